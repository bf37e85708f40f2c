--[[
  Appends messages to one stream's log, atomically: assign seqs, push, trim, refresh TTLs,
  record idempotency keys, publish one wake-up (carrying the appended messages when they fit):
  SPUBLISH on a Redis Cluster, so only the shard that owns the stream carries it, else PUBLISH.
  Starts a new epoch when the Redis process that serves the stream is not the one that last
  wrote it (see "Redis restarts" below).

  KEYS[1] meta  hash: e = epoch, s = last seq, r = run_id of the Redis process that last wrote,
                n = its cluster node id ('' outside a cluster)
  KEYS[2] log   list of stored message JSON, oldest first (seq of index i = first + i)
  KEYS[3] ids   sorted set: idempotency key -> seq, trimmed with the log (idempotency window = retained log)

  ARGV[1] maxLength        ARGV[2] log TTL (ms)       ARGV[3] meta TTL (ms)
  ARGV[4] epoch to use for a new log, or after a Redis restart
  ARGV[5] wake-up channel, in the keys' hash slot (it carries their hash tag)
  ARGV[6] stored JSON before the seq
  ARGV[7] most bytes of messages a wake-up may carry (0: never carry them)
  ARGV[8] "1": wake with SPUBLISH (sharded pub/sub, Redis >= 7.0), "0": PUBLISH
  ARGV[9], ARGV[10], ...   pairs of (idempotency key, stored JSON after the seq); the key is the
                           message id scoped by its sender (idempotencyKey in store.ts), or ''
                           for an id the gateway made (retryKey): neither looked up nor recorded

  Wake-up payload: "<epoch>:<last seq>", followed by "\n" and the appended messages joined by
  "\n" when all of them fit in ARGV[7] bytes, none was trimmed away by this append and none
  contains a newline (stored JSON never does; the check keeps the framing safe regardless).

  Output: { epoch, seq1, duplicate1, seq2, duplicate2, ... }, duplicate = 1 when the key was
  already in the retained log (nothing appended, seq is the original's).

  Redis restarts: with appendfsync everysec (or no persistence of the last writes, or a failover
  to a lagging replica) the restarted Redis may have lost the newest writes, and seq would then
  roll back under the same epoch: new messages would reuse seqs clients already saw, and clients
  would drop them as duplicates. run_id changes on every Redis start, so a stream first written
  by a new process gets a new epoch (its seqs go on, its log and ids are kept): every reader is
  told "reset" instead of silently skipping. serverInfo() (server-info.lua, joined before this
  file) gives INFO server: asked on every call when run as EVAL (~7 us), kept per process when run
  as a Redis function (server-info-kept.lua; lib/store/lua-script.ts).

  Slot migrations: MIGRATE moves a stream's keys from a live master exactly as they are, so a
  stream last written by another node that is still a healthy master (CLUSTER NODES) came here by
  migration and keeps its epoch; its readers see nothing happen. Written last by this node in an
  earlier process (a restart), or by a master that failed or is a replica now (a failover to us,
  a replica that may have lagged), it starts a new epoch as above.
]]
local meta, log, ids = KEYS[1], KEYS[2], KEYS[3]
local maxLength = tonumber(ARGV[1])

local server = serverInfo()
local runId = string.match(server, 'run_id:(%x+)')
local state = redis.call('HMGET', meta, 'e', 'r', 'n')
local epoch = state[1]

-- This node's cluster id, '' outside a cluster; asked only when the stream's writer changes.
local function myNodeId()
  if string.find(server, 'redis_mode:cluster', 1, true) then
    return redis.call('CLUSTER', 'MYID')
  end
  return ''
end

-- Whether `node` is another master that is up and connected, as this node sees the cluster.
local function isHealthyOtherMaster(node, me)
  if not node or node == '' or node == me then
    return false
  end
  local nodes = '\n' .. redis.call('CLUSTER', 'NODES')
  local start = string.find(nodes, '\n' .. node .. ' ', 1, true)
  if not start then
    return false
  end
  local line = string.match(nodes, '[^\n]+', start + 1)
  local flags, link = string.match(line, '^%S+ %S+ (%S+) %S+ %S+ %S+ %S+ (%S+)')
  if not flags or link ~= 'connected' then
    return false
  end
  return string.find(',' .. flags .. ',', ',master,', 1, true) ~= nil
    and not string.find(flags, 'fail', 1, true) and not string.find(flags, 'noaddr', 1, true)
end

if not epoch then
  -- A new log: whatever survived of an older one must not be served under the new epoch.
  epoch = ARGV[4]
  -- DEL only what exists: any write, even a no-op DEL, makes Redis skip its maxmemory check for
  -- the rest of the script, and a flood of new streams would then grow past maxmemory.
  if redis.call('EXISTS', log, ids) > 0 then
    redis.call('DEL', log, ids)
  end
  redis.call('HSET', meta, 'e', epoch, 's', '0', 'r', runId, 'n', myNodeId())
elseif state[2] ~= runId then
  local me = myNodeId()
  if isHealthyOtherMaster(state[3], me) then
    redis.call('HSET', meta, 'r', runId, 'n', me)
  else
    epoch = ARGV[4]
    redis.call('HSET', meta, 'e', epoch, 'r', runId, 'n', me)
  end
end

local last = tonumber(redis.call('HGET', meta, 's'))
local first = last - redis.call('LLEN', log) + 1
local out = { epoch }
local appended = 0
local carry = tonumber(ARGV[7])
local carried = {}
local carriedBytes = 0

for i = 9, #ARGV, 2 do
  local key = ARGV[i]
  local prev = key ~= '' and redis.call('ZSCORE', ids, key)
  if prev and tonumber(prev) >= first then
    out[#out + 1] = tonumber(prev)
    out[#out + 1] = 1
  else
    last = last + 1
    local seq = string.format('%d', last)
    local stored = ARGV[6] .. seq .. ARGV[i + 1]
    redis.call('RPUSH', log, stored)
    if carry > 0 then
      carriedBytes = carriedBytes + #stored + 1
      if carriedBytes > carry or string.find(stored, '\n', 1, true) then
        carry = 0
      else
        carried[#carried + 1] = stored
      end
    end
    if key ~= '' then
      redis.call('ZADD', ids, seq, key)
    end
    out[#out + 1] = last
    out[#out + 1] = 0
    appended = appended + 1
  end
end

if appended > 0 then
  local lastText = string.format('%d', last)
  redis.call('HSET', meta, 's', lastText)
  local length = redis.call('LLEN', log)
  if length > maxLength then
    redis.call('LTRIM', log, length - maxLength, -1)
    redis.call('ZREMRANGEBYSCORE', ids, '-inf', '(' .. string.format('%d', last - maxLength + 1))
  end
  redis.call('PEXPIRE', log, ARGV[2])
  redis.call('PEXPIRE', ids, ARGV[2])
  redis.call('PEXPIRE', meta, ARGV[3])
  local wake = epoch .. ':' .. lastText
  if carry > 0 and appended <= maxLength then
    wake = wake .. '\n' .. table.concat(carried, '\n')
  end
  if ARGV[8] == '1' then
    redis.call('SPUBLISH', ARGV[5], wake)
  else
    redis.call('PUBLISH', ARGV[5], wake)
  end
end

return out
