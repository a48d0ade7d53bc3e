-- admit: every decision that must be atomic for one request, in one call
-- (gw_state_admit; the same steps as state_admit.c's composed form).
-- KEYS: 1 idempotency answer (id:<request_id>), 2 its lease (il:), 3 cache
-- entry (c:<key>), 4 its single-flight lock (cl:), 5 budget day, 6 budget
-- month, 7.. limiter keys (rl:<scope>). Unused keys are passed all the same.
-- ARGV: 1 claim ("1"), 2 owner, 3 lease_ms, 4 cache mode (0 none, 1 read,
-- 2 read and lock, 3 refresh: lock without reading), 5 lock_ms, 6 result
-- ttl_s (a hit kept as the idempotency answer), 7 budget ("1"), 8 estimate
-- micro-USD, 9 daily limit micro-USD (0 none), 10 monthly, 11 n limiter
-- keys, then per key: rate_per_min, burst, miss cost, hit cost; last: the
-- request's fingerprint ("" none), kept before a hit kept as its answer
-- ("<fingerprint>|<bytes>", as complete.lua keeps answers).
-- Returns {1, bytes} the kept answer; {2, pttl} leased by another; {3,
-- retry_ms, i} denied by key i (1-based); {4, 0, i} key i never fits; {5,
-- "day"|"month"} over budget; {6, bytes, kept} cache hit (kept = 1 when
-- stored as the idempotency answer); {7} miss, lock taken; {8, pttl} miss,
-- locked by another; {9} miss. From 3 on, a claim asked for is held.
-- One TIME, only when there are limiter keys; every key written has a TTL.
-- Fencing: a lease or lock released by its owner is left as "~<owner>" (see
-- complete.lua): free for anyone else, but a late copy of the owner's own
-- admission (its reply lost to a timeout, run after the release) takes
-- nothing, so no lease or lock outlives its request.
local claim, owner = ARGV[1] == '1', ARGV[2]
local function take(key, ms)
  local cur = redis.call('GET', key)
  if cur == owner then redis.call('PEXPIRE', key, ms) return true end
  if cur == '~' .. owner then return false end
  if cur and string.sub(cur, 1, 1) ~= '~' then return false end
  redis.call('SET', key, owner, 'PX', ms)
  return true
end
if claim then
  local v = redis.call('GET', KEYS[1])
  if v then return {1, v} end
  if not take(KEYS[2], ARGV[3]) then return {2, redis.call('PTTL', KEYS[2])} end
end
local mode = tonumber(ARGV[4])
local hit = false
local cached
if mode == 1 or mode == 2 then
  cached = redis.call('GET', KEYS[3])
  hit = cached ~= false and cached ~= nil
end
local n = tonumber(ARGV[11])
if n > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local nt, cost, worst, widx = {}, {}, -1, 0
  for i = 1, n do
    local b = 11 + 4 * (i - 1)
    local rate, burst = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
    local c = tonumber(ARGV[hit and b + 4 or b + 3])
    if c > burst then return {4, 0, i} end
    local T = 60000 / rate
    local tat = tonumber(redis.call('GET', KEYS[6 + i]) or '0') or 0
    if tat < now then tat = now end
    nt[i], cost[i] = tat + c * T, c
    local over = nt[i] - now - burst * T
    if over > 0 and over > worst then worst, widx = over, i end
  end
  if widx > 0 then return {3, math.ceil(worst), widx} end
  for i = 1, n do
    if cost[i] > 0 then
      redis.call('SET', KEYS[6 + i], string.format('%.3f', nt[i]), 'PX',
                 math.max(1, math.ceil(nt[i] - now)))
    end
  end
end
if hit then
  local kept = 0
  if claim then
    local fp = ARGV[12 + 4 * n]
    local v = cached
    if fp and fp ~= '' then v = fp .. '|' .. cached end
    if redis.call('SET', KEYS[1], v, 'EX', ARGV[6], 'NX') then kept = 1 end
    if redis.call('GET', KEYS[2]) == owner then redis.call('DEL', KEYS[2]) end
  end
  return {6, cached, kept}
end
if ARGV[7] == '1' then
  local s = redis.call('MGET', KEYS[5], KEYS[6])
  local est = tonumber(ARGV[8])
  local dl, ml = tonumber(ARGV[9]), tonumber(ARGV[10])
  if dl > 0 and (tonumber(s[1]) or 0) + est > dl then return {5, 'day'} end
  if ml > 0 and (tonumber(s[2]) or 0) + est > ml then return {5, 'month'} end
end
if mode == 2 or mode == 3 then
  if take(KEYS[4], ARGV[5]) then return {7} end
  return {8, redis.call('PTTL', KEYS[4])}
end
return {9}
