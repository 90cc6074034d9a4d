-- Your own strategy, an example: a project's newest sessions with their last 10 messages,
-- in one statement with a LATERAL join (PostgreSQL, DuckDB; SQLite has no LATERAL).
-- Parameters: :project_id, :limit (the page's sessions). Notebook 02, "Your own strategies".
SELECT s.id AS session_id, s.title, m.id AS message_id, m.role, m.timestamp, m.output_tokens
FROM (
    SELECT id, title, created_at
    FROM sessions
    WHERE project_id = :project_id
    ORDER BY created_at DESC, id DESC
    LIMIT :limit
) AS s
CROSS JOIN LATERAL (
    SELECT id, role, timestamp, output_tokens
    FROM messages
    WHERE messages.session_id = s.id
    ORDER BY timestamp DESC, id DESC
    LIMIT 10
) AS m
ORDER BY s.created_at DESC, s.id DESC, m.timestamp DESC, m.id DESC
