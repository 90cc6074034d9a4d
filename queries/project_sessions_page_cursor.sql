-- The paginated session list as the plan's code pages it: `id > :cursor` under an order by
-- creation time. Ids and creation times disagree (sessions are synced late), so it skips
-- and repeats rows; kept to be measured against OFFSET and a keyset cursor.
-- Parameters: :project_id, :cursor (the last id of the previous page, 0 first), :limit
SELECT id, project_id, title, model, message_count, created_at
FROM sessions
WHERE project_id = :project_id AND id > :cursor
ORDER BY created_at DESC
LIMIT :limit
