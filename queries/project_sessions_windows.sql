-- A project's recent sessions joined to their 5-hour windows (one join per relation).
-- Parameters: :project_id, :limit
WITH recent AS (
    SELECT id
    FROM sessions
    WHERE project_id = :project_id
    ORDER BY created_at DESC, id DESC
    LIMIT :limit
)
SELECT w.id, w.session_id, w.start_time, w.end_time, w.last_activity, w.message_count, w.total_tokens
FROM recent AS s
JOIN session_windows AS w ON w.session_id = s.id
ORDER BY w.session_id, w.start_time, w.id
