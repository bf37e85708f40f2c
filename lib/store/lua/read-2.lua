--[[
  Reads one stream after a seq: O(messages returned) for readers near the head, because the
  range is addressed from the tail. With a byte bound it reads the list in slices sized by the
  messages seen so far and stops before the first message that would pass the bound, so neither
  this script nor its reply holds much more than the answer can carry (issue 23: one poll of 5
  big streams made Redis send 60 MB for a 12 MB answer).

  KEYS[1] meta  hash: e = epoch, s = last seq
  KEYS[2] log   list of stored message JSON, oldest first

  ARGV[1] after: return messages with seq > after
  ARGV[2] limit: at most this many messages (0 reads only the head)
  ARGV[3] maxBytes: at most this many bytes of messages (0: no byte bound)

  Output: { epoch or '', last seq, first retained seq, life, next bytes, bytes, message1, ... }
  where the messages have seqs max(after, first - 1) + 1, ... in order; life is the ms until the
  first of meta and log expires (-1: neither will): until then, only an append can change this
  answer (the tail cache, tail-cache.ts, relies on it); next bytes is the size of the message
  the byte bound left out (0: the bound did not stop the read); bytes is the size of the
  messages returned.
]]
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  return { '', 0, 1, -1, 0, 0 }
end
local last = tonumber(redis.call('HGET', KEYS[1], 's'))
local length = redis.call('LLEN', KEYS[2])
local first = last - length + 1
local life = redis.call('PTTL', KEYS[1])
local logLife = redis.call('PTTL', KEYS[2])
if logLife >= 0 and (life < 0 or logLife < life) then
  life = logLife
end
local out = { epoch, last, first, life, 0, 0 }

local limit = tonumber(ARGV[2])
local maxBytes = tonumber(ARGV[3]) or 0
local from = math.max(tonumber(ARGV[1]) + 1, first)
if limit <= 0 or from > last then
  return out
end
local startIndex = from - first
local endIndex = math.min(startIndex + limit - 1, length - 1)
if maxBytes <= 0 then
  local messages = redis.call('LRANGE', KEYS[2], startIndex - length, endIndex - length)
  for i = 1, #messages do
    out[6] = out[6] + #messages[i]
    out[#out + 1] = messages[i]
  end
  return out
end
local used = 0
local slice = 1
while startIndex <= endIndex do
  local sliceEnd = math.min(startIndex + slice - 1, endIndex)
  local messages = redis.call('LRANGE', KEYS[2], startIndex - length, sliceEnd - length)
  for i = 1, #messages do
    local size = #messages[i]
    if used + size > maxBytes then
      out[5] = size
      out[6] = used
      return out
    end
    used = used + size
    out[#out + 1] = messages[i]
  end
  startIndex = sliceEnd + 1
  -- The next slice: as many as the average so far says still fit, plus the one that will not;
  -- at most twice the last, so a run of small messages cannot size a slice of big ones.
  local returned = #out - 6
  slice = math.max(1, math.min(slice * 2, math.floor((maxBytes - used) * returned / used) + 1))
end
out[6] = used
return out
