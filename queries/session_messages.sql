-- One session's messages in conversation order (the transcript view).
-- Parameters: :session_id
SELECT id, session_id, external_id, role, type, content, timestamp, model,
       input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens
FROM messages
WHERE session_id = :session_id
ORDER BY timestamp, id
