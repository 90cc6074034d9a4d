-- A day's messages across all sessions (the daily usage view), oldest first.
-- Parameters: :day_start, :day_end (the next midnight)
SELECT id, session_id, role, model, input_tokens, output_tokens, timestamp
FROM messages
WHERE timestamp >= :day_start AND timestamp < :day_end
ORDER BY timestamp, id
