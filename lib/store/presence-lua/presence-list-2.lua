-- presence-list-2: one stream's present subjects, after expiring dead members (so a node killed
-- with SIGKILL is gone from the answer once its members' expiry passed).
-- KEYS[1] members: zset, member "<node>|<session>|<subject>" -> expiry (ms)
-- KEYS[2] counts:  hash, subject -> members of that subject
-- ARGV[1] now (ms)
-- Returns {changes, counts}: changes flat {"leave", sub, ...}; counts as HGETALL {sub, n, ...}.
local changes = {}
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, m in ipairs(dead) do
  local sub = string.match(m, '^[^|]*|[^|]*|(.*)$')
  if redis.call('HINCRBY', KEYS[2], sub, -1) <= 0 then
    redis.call('HDEL', KEYS[2], sub)
    changes[#changes + 1] = 'leave'
    changes[#changes + 1] = sub
  end
end
if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]) end
return {changes, redis.call('HGETALL', KEYS[2])}
