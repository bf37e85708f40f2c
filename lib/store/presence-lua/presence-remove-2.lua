-- presence-remove-2: remove members of one stream's presence, after expiring dead ones.
-- KEYS[1] members: zset, member "<node>|<session>|<subject>" -> expiry (ms)
-- KEYS[2] counts:  hash, subject -> members of that subject
-- ARGV[1] now (ms); ARGV[2..] member, subject, member, subject, ...
-- Returns the leaves it caused, flat: {"leave", sub, ...}.
-- `changes` holds the leaves of the members that expired (presence-expire.lua, run first).
for i = 2, #ARGV, 2 do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    if redis.call('HINCRBY', KEYS[2], ARGV[i + 1], -1) <= 0 then
      redis.call('HDEL', KEYS[2], ARGV[i + 1])
      changes[#changes + 1] = 'leave'
      changes[#changes + 1] = ARGV[i + 1]
    end
  end
end
return changes
