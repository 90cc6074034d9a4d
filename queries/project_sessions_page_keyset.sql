-- The paginated session list with a keyset cursor on (created_at, id), in the order shown:
-- the next page starts strictly after the last row of the previous one.
-- Parameters: :project_id, :after_created_at, :after_id (the last row's, or the far future first), :limit
SELECT id, project_id, title, model, message_count, created_at
FROM sessions
WHERE project_id = :project_id AND (created_at, id) < (:after_created_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit
