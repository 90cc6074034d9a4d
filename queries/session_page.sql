-- The service's session list page (/projects/{id}/sessions), newest first, with a keyset
-- cursor on (created_at, id): the next page starts strictly after the last row shown.
-- Parameters: :project_id, :after_created_at, :after_id (the last row's; the far future and 0
-- for the first page), :limit
SELECT id, project_id, external_id, title, model, git_branch, is_sidechain, message_count,
       created_at, updated_at
FROM sessions
WHERE project_id = :project_id AND (created_at, id) < (:after_created_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit
