-- The newest jobs in one status (the job queue / admin page).
-- Parameters: :status, :limit
SELECT id, session_id, type, status, attempts, error, created_at, started_at, finished_at
FROM jobs
WHERE status = :status
ORDER BY created_at DESC, id DESC
LIMIT :limit
