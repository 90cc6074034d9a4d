-- The paginated session list with OFFSET: correct on a still table, slower with depth.
-- Parameters: :project_id, :limit, :offset
SELECT id, project_id, title, model, message_count, created_at
FROM sessions
WHERE project_id = :project_id
ORDER BY created_at DESC, id DESC
LIMIT :limit OFFSET :offset
