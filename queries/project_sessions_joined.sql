-- The plan's single query: a project's recent sessions with their messages and windows
-- in one three-table LEFT JOIN. Each session returns (messages x windows) rows, so the
-- caller must de-duplicate messages and windows when assembling.
-- Parameters: :project_id, :limit
WITH recent AS (
    SELECT id, project_id, external_id, title, model, git_branch, is_sidechain, message_count,
           created_at, updated_at
    FROM sessions
    WHERE project_id = :project_id
    ORDER BY created_at DESC, id DESC
    LIMIT :limit
)
SELECT s.id, s.project_id, s.external_id, s.title, s.model, s.git_branch, s.is_sidechain,
       s.message_count, s.created_at, s.updated_at,
       m.id AS m_id, m.session_id AS m_session_id, m.external_id AS m_external_id, m.role AS m_role,
       m.type AS m_type, m.content AS m_content, m.timestamp AS m_timestamp, m.model AS m_model,
       m.input_tokens AS m_input_tokens, m.output_tokens AS m_output_tokens,
       m.cache_creation_tokens AS m_cache_creation_tokens, m.cache_read_tokens AS m_cache_read_tokens,
       w.id AS w_id, w.session_id AS w_session_id, w.start_time AS w_start_time,
       w.end_time AS w_end_time, w.last_activity AS w_last_activity,
       w.message_count AS w_message_count, w.total_tokens AS w_total_tokens
FROM recent AS s
LEFT JOIN messages AS m ON m.session_id = s.id
LEFT JOIN session_windows AS w ON w.session_id = s.id
ORDER BY s.created_at DESC, s.id DESC, m.timestamp, m.id, w.start_time, w.id
