-- One session's row (/sessions/{id}, before its messages and windows).
-- Parameters: :session_id
SELECT id, project_id, external_id, title, model, git_branch, is_sidechain, message_count,
       created_at, updated_at
FROM sessions
WHERE id = :session_id
