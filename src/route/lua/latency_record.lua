-- latency_record: applies lat_ewma_apply's formula (src/route/latency.c)
-- atomically to one deployment's hash.
-- KEYS: <prefix>lat:{<id>}. ARGV: alpha, ttft_ms (< 0: none), total_ms,
-- ttl_ms.
-- Returns the new {ttft, total, samples}; values are kept as decimal strings
-- with 3 decimals.
local h = redis.call('HMGET', KEYS[1], 't', 'T', 'n')
local n = tonumber(h[3]) or 0
local a, x, y = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t, T
if n == 0 then
  T = y
  if x >= 0 then t = x else t = y end
else
  T = tonumber(h[2]) + a * (y - tonumber(h[2]))
  t = tonumber(h[1])
  if x >= 0 then t = t + a * (x - t) end
end
n = n + 1
local ts, Ts = string.format('%.3f', t), string.format('%.3f', T)
redis.call('HSET', KEYS[1], 't', ts, 'T', Ts, 'n', n)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {ts, Ts, n}
