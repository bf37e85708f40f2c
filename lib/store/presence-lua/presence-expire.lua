-- presence-expire: runs first in each presence script (LuaScript's prelude). Removes one stream's
-- members whose expiry (ms) is at or before ARGV[1] and counts their subjects down; `changes`
-- gets a leave for each subject that has no member left, and the script after it adds its own.
-- KEYS[1] members: zset, member "<node>|<session>|<subject>" -> expiry (ms)
-- KEYS[2] counts:  hash, subject -> members of that subject
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
