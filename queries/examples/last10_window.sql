-- Your own strategy, an example: a project's newest sessions with their last 10 messages,
-- in one statement with a window function (every engine).
-- Parameters: :project_id, :limit (the page's sessions). Notebook 02, "Your own strategies".
WITH page AS (
    SELECT id, title, created_at
    FROM sessions
    WHERE project_id = :project_id
    ORDER BY created_at DESC, id DESC
    LIMIT :limit
),
ranked AS (
    SELECT m.session_id, m.id, m.role, m.timestamp, m.output_tokens,
           row_number() OVER (PARTITION BY m.session_id ORDER BY m.timestamp DESC, m.id DESC) AS nth
    FROM messages AS m
    JOIN page ON page.id = m.session_id
)
SELECT page.id AS session_id, page.title, r.id AS message_id, r.role, r.timestamp, r.output_tokens
FROM page
JOIN ranked AS r ON r.session_id = page.id AND r.nth <= 10
ORDER BY page.created_at DESC, page.id DESC, r.timestamp DESC, r.id DESC
