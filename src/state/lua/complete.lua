-- complete: every write that follows an answer, in one call
-- (gw_state_complete; the same writes as state_admit.c's composed form).
-- KEYS: 1 idempotency answer (id:<request_id>), 2 its lease (il:), 3 cache
-- entry (c:<key>), 4 its lock (cl:), 5 reconcile marker (rr:<request_id>),
-- 6 budget charge marker (bc:), 7 budget day, 8 budget month, 9.. limiter
-- keys to reconcile. Unused keys are passed all the same.
-- ARGV: 1 response bytes, 2 owner, 3 idempotency (0 none, 1 store, 2
-- release), 4 its ttl_s, 5 cache (0 none, 1 store, 2 release), 6 its ttl_s,
-- 7 marker_ttl_ms, 8 charge micro-USD (0 none), 9 day ttl_s, 10 month ttl_s,
-- 11 n limiter keys, 12 tombstone ttl_ms, then per key: rate_per_min,
-- signed delta; last: the request's fingerprint ("" none), kept before the
-- idempotency answer ("<fingerprint>|<bytes>") so that a reused request id
-- with other content is told apart.
-- Returns 1 when the idempotency answer was stored by this call, else 0.
-- The first stored answer wins; reconcile and charge apply once per request.
-- A release leaves "~<owner>" for the tombstone ttl (12) when the key is the
-- owner's or empty, so a late copy of the owner's admission cannot take it
-- again (admit.lua); anyone else may.
local owner, applied = ARGV[2], 0
local function release(key, ms)
  local cur = redis.call('GET', key)
  if cur == owner or cur == false then
    redis.call('SET', key, '~' .. owner, 'PX', ms)
  end
end
local idem, cache = ARGV[3], ARGV[5]
if idem == '1' then
  local fp = ARGV[13 + 2 * tonumber(ARGV[11])]
  local v = ARGV[1]
  if fp and fp ~= '' then v = fp .. '|' .. ARGV[1] end
  if redis.call('SET', KEYS[1], v, 'EX', ARGV[4], 'NX') then applied = 1 end
end
if idem == '1' and redis.call('GET', KEYS[2]) == owner then redis.call('DEL', KEYS[2]) end
if idem == '2' then release(KEYS[2], ARGV[12]) end
if cache == '1' then
  redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[6])
  if redis.call('GET', KEYS[4]) == owner then redis.call('DEL', KEYS[4]) end
end
if cache == '2' then release(KEYS[4], ARGV[12]) end
local n = tonumber(ARGV[11])
if n > 0 and redis.call('SET', KEYS[5], '1', 'NX', 'PX', ARGV[7]) then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  for i = 1, n do
    local rate, delta = tonumber(ARGV[11 + 2 * i]), tonumber(ARGV[12 + 2 * i])
    local k = KEYS[8 + i]
    local tat = tonumber(redis.call('GET', k) or '0') or 0
    if tat < now then tat = now end
    local nt = tat + delta * 60000 / rate
    if nt <= now then redis.call('DEL', k)
    else redis.call('SET', k, string.format('%.3f', nt), 'PX', math.ceil(nt - now)) end
  end
end
local charge = tonumber(ARGV[8])
if charge > 0 and redis.call('SET', KEYS[6], '1', 'NX', 'PX', ARGV[7]) then
  redis.call('INCRBY', KEYS[7], charge)
  redis.call('EXPIRE', KEYS[7], ARGV[9])
  redis.call('INCRBY', KEYS[8], charge)
  redis.call('EXPIRE', KEYS[8], ARGV[10])
end
return applied
