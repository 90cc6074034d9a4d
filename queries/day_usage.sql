-- A day's token usage by model (/usage/{day}): messages, sessions and tokens per model.
-- Parameters: :day_start, :day_end (the next midnight)
SELECT coalesce(model, '') AS model, count(*) AS messages, count(DISTINCT session_id) AS sessions,
       coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cache_creation_tokens), 0) AS cache_creation_tokens,
       coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens
FROM messages
WHERE timestamp >= :day_start AND timestamp < :day_end
GROUP BY coalesce(model, '')
ORDER BY model
