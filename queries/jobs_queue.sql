-- The jobs queue page: the oldest jobs waiting in one status, next to be worked on.
-- Parameters: :status, :limit
SELECT id, session_id, type, status, attempts, created_at
FROM jobs
WHERE status = :status
ORDER BY created_at, id
LIMIT :limit
