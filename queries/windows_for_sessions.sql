-- 5-hour windows of many sessions at once (batch / "select-in" loading).
-- Parameters: :session_ids (a list; the workbench expands it, or binds an array on PostgreSQL)
SELECT id, session_id, start_time, end_time, last_activity, message_count, total_tokens
FROM session_windows
WHERE session_id IN :session_ids
ORDER BY session_id, start_time, id
