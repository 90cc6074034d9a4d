-- Messages of many sessions at once (batch / "select-in" loading).
-- Parameters: :session_ids (a list; the workbench expands it, or binds an array on PostgreSQL)
SELECT id, session_id, external_id, role, type, content, timestamp, model,
       input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens
FROM messages
WHERE session_id IN :session_ids
ORDER BY session_id, timestamp, id
