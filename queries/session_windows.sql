-- One session's 5-hour usage windows, oldest first.
-- Parameters: :session_id
SELECT id, session_id, start_time, end_time, last_activity, message_count, total_tokens
FROM session_windows
WHERE session_id = :session_id
ORDER BY start_time, id
