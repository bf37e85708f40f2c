-- presence-add-2: add or refresh members of one stream's presence, after expiring dead ones.
-- KEYS[1] members: zset, member "<node>|<session>|<subject>" -> expiry (ms)
-- KEYS[2] counts:  hash, subject -> members of that subject
-- ARGV[1] now (ms); ARGV[2] the members' new expiry (ms); ARGV[3] both keys' TTL (ms)
-- ARGV[4..] member, subject, member, subject, ... (a member already there only gets its expiry moved)
-- Returns the joins and leaves it caused, flat: {"leave", sub, "join", sub, ...}, expiries first.
-- `changes` holds the leaves of the members that expired (presence-expire.lua, run first).
for i = 4, #ARGV, 2 do
  if redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i]) == 1 then
    if redis.call('HINCRBY', KEYS[2], ARGV[i + 1], 1) == 1 then
      changes[#changes + 1] = 'join'
      changes[#changes + 1] = ARGV[i + 1]
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return changes
