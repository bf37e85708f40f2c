-- presence-list-2: one stream's present subjects, after expiring dead members (so a node killed
-- with SIGKILL is gone from the answer once its members' expiry passed).
-- KEYS[1] members: zset, member "<node>|<session>|<subject>" -> expiry (ms)
-- KEYS[2] counts:  hash, subject -> members of that subject
-- ARGV[1] now (ms)
-- Returns {changes, counts}: changes flat {"leave", sub, ...}; counts as HGETALL {sub, n, ...}.
-- `changes` holds the leaves of the members that expired (presence-expire.lua, run first).
return {changes, redis.call('HGETALL', KEYS[2])}
