-- A project's recent sessions with their messages and windows aggregated in the database:
-- one row per session, messages and windows as JSON arrays (PostgreSQL json_agg). The
-- workbench translates the aggregates to DuckDB lists of structs and SQLite json_group_array.
-- Parameters: :project_id, :limit
WITH recent AS (
    SELECT id, project_id, external_id, title, model, git_branch, is_sidechain, message_count,
           created_at, updated_at
    FROM sessions
    WHERE project_id = :project_id
    ORDER BY created_at DESC, id DESC
    LIMIT :limit
), msgs AS (
    SELECT m.session_id,
           json_agg(json_build_object(
               'id', m.id, 'session_id', m.session_id, 'external_id', m.external_id,
               'role', m.role, 'type', m.type, 'content', m.content, 'timestamp', m.timestamp,
               'model', m.model, 'input_tokens', m.input_tokens, 'output_tokens', m.output_tokens,
               'cache_creation_tokens', m.cache_creation_tokens,
               'cache_read_tokens', m.cache_read_tokens
           ) ORDER BY m.timestamp, m.id) AS items
    FROM messages AS m
    JOIN recent AS r ON r.id = m.session_id
    GROUP BY m.session_id
), wins AS (
    SELECT w.session_id,
           json_agg(json_build_object(
               'id', w.id, 'session_id', w.session_id, 'start_time', w.start_time,
               'end_time', w.end_time, 'last_activity', w.last_activity,
               'message_count', w.message_count, 'total_tokens', w.total_tokens
           ) ORDER BY w.start_time, w.id) AS items
    FROM session_windows AS w
    JOIN recent AS r ON r.id = w.session_id
    GROUP BY w.session_id
)
SELECT s.id, s.project_id, s.external_id, s.title, s.model, s.git_branch, s.is_sidechain,
       s.message_count, s.created_at, s.updated_at, msgs.items AS messages, wins.items AS windows
FROM recent AS s
LEFT JOIN msgs ON msgs.session_id = s.id
LEFT JOIN wins ON wins.session_id = s.id
ORDER BY s.created_at DESC, s.id DESC
