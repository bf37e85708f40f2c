-- serverInfo() in a function library: INFO server asked once per Lua state and kept. What the
-- scripts read of it (run_id, redis_mode) cannot change while the process runs; a restarted Redis,
-- a replica promoted in a failover, or a reload of the library runs the library afresh, and the
-- first call asks again. That is what append-3.lua's restart check needs, for a third of the
-- append's Redis CPU less (docs/PERFORMANCE.md, "Redis CPU").
local kept
local function serverInfo()
  if not kept then
    kept = redis.call('INFO', 'server')
  end
  return kept
end
