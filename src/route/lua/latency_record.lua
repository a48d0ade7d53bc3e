-- latency_record: applies a batch of samples to one deployment's hash with
-- lat_ewma_apply's formula (src/route/latency.c), as if applied one by one.
-- The worker folds the batch y1..yk into EWMA terms: with alpha a, the value
-- after the batch is d * v + s where d = (1-a)^k and s = sum of
-- a(1-a)^(k-i) y_i; when the hash has no samples yet the first sample is
-- the value and the rest fold onto it (d2, s2 over y2..yk).
-- KEYS: <prefix>lat:{<id>}. ARGV: 1 k (samples), 2 ttl_ms; total: 3 first,
-- 4 d, 5 s, 6 d2, 7 s2; ttft: 8 first, 9 d, 10 s, 11 d2, 12 s2 (ttft terms
-- cover the samples that had a ttft; first is the first sample's ttft, or
-- its total when it had none).
-- Returns the new {ttft, total, samples}; values are kept as decimal
-- strings with 3 decimals.
local h = redis.call('HMGET', KEYS[1], 't', 'T', 'n')
local n = tonumber(h[3]) or 0
local k = tonumber(ARGV[1])
local t, T
if n == 0 then
  T = tonumber(ARGV[6]) * tonumber(ARGV[3]) + tonumber(ARGV[7])
  t = tonumber(ARGV[11]) * tonumber(ARGV[8]) + tonumber(ARGV[12])
else
  T = tonumber(ARGV[4]) * tonumber(h[2]) + tonumber(ARGV[5])
  t = tonumber(ARGV[9]) * tonumber(h[1]) + tonumber(ARGV[10])
end
n = n + k
local ts, Ts = string.format('%.3f', t), string.format('%.3f', T)
redis.call('HSET', KEYS[1], 't', ts, 'T', Ts, 'n', n)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {ts, Ts, n}
