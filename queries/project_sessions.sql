-- A project's most recent sessions (the session list page).
-- Parameters: :project_id, :limit
SELECT id, project_id, external_id, title, model, git_branch, is_sidechain, message_count,
       created_at, updated_at
FROM sessions
WHERE project_id = :project_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
