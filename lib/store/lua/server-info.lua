-- serverInfo(): INFO server of the Redis process running the script (its run_id, its redis_mode).
-- Run as EVAL, a script keeps nothing between calls: it asks every time (about 7 us of Redis CPU).
local function serverInfo()
  return redis.call('INFO', 'server')
end
