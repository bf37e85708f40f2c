--[[
  Reads one stream after a seq: O(messages returned) for readers near the head, because the
  range is addressed from the tail.

  KEYS[1] meta  hash: e = epoch, s = last seq
  KEYS[2] log   list of stored message JSON, oldest first

  ARGV[1] after: return messages with seq > after
  ARGV[2] limit: at most this many messages (0 reads only the head)

  Output: { epoch or '', last seq, first retained seq, life, message1, message2, ... }
  where the messages have seqs max(after, first - 1) + 1, ... in order, and life is the ms
  until the first of meta and log expires (-1: neither will): until then, only an append can
  change this answer (the tail cache, tail-cache.ts, relies on it).
]]
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  return { '', 0, 1, -1 }
end
local last = tonumber(redis.call('HGET', KEYS[1], 's'))
local length = redis.call('LLEN', KEYS[2])
local first = last - length + 1
local life = redis.call('PTTL', KEYS[1])
local logLife = redis.call('PTTL', KEYS[2])
if logLife >= 0 and (life < 0 or logLife < life) then
  life = logLife
end
local out = { epoch, last, first, life }

local limit = tonumber(ARGV[2])
local from = math.max(tonumber(ARGV[1]) + 1, first)
if limit > 0 and from <= last then
  local startIndex = from - first
  local endIndex = math.min(startIndex + limit - 1, length - 1)
  local messages = redis.call('LRANGE', KEYS[2], startIndex - length, endIndex - length)
  for i = 1, #messages do
    out[#out + 1] = messages[i]
  end
end
return out
