-- latency_record: applies a batch of samples to one deployment's hash with
-- lat_ewma_apply's formula (src/route/latency.c), as if applied one by one,
-- and the batch's changes of the adaptive concurrency cap (src/route/aimd.h).
-- The worker folds the batch y1..yk into EWMA terms: with alpha a, the value
-- after the batch is d * v + s where d = (1-a)^k and s = sum of
-- a(1-a)^(k-i) y_i; when the hash has no samples yet the first sample is
-- the value and the rest fold onto it (d2, s2 over y2..yk).
-- KEYS: <prefix>lat:{<id>}. ARGV: 1 k (samples, may be 0), 2 ttl_ms; total:
-- 3 first, 4 d, 5 s, 6 d2, 7 s2; ttft: 8 first, 9 d, 10 s, 11 d2, 12 s2 (ttft
-- terms cover the samples that had a ttft; first is the first sample's ttft,
-- or its total when it had none). Cap (all optional; max 0 or absent: no cap
-- change): 13 increase sum, 14 decrease count, 15 min, 16 max, 17 decrease
-- factor, 18 hold_ms. The cap (field c, starting at max) is multiplied by
-- the factor once when the batch has decreases and the hold (field cd, a
-- Redis TIME in ms) is over, which starts a new hold; then the increases
-- are added; it stays within min..max.
-- Returns the new {ttft, total, samples, cap} ('0' for a cap never set);
-- values are kept as decimal strings with 3 decimals.
local h = redis.call('HMGET', KEYS[1], 't', 'T', 'n', 'c', 'cd')
local n = tonumber(h[3]) or 0
local k = tonumber(ARGV[1])
local ts, Ts = h[1] or '0', h[2] or '0'
if k > 0 then
  local t, T
  if n == 0 then
    T = tonumber(ARGV[6]) * tonumber(ARGV[3]) + tonumber(ARGV[7])
    t = tonumber(ARGV[11]) * tonumber(ARGV[8]) + tonumber(ARGV[12])
  else
    T = tonumber(ARGV[4]) * tonumber(h[2]) + tonumber(ARGV[5])
    t = tonumber(ARGV[9]) * tonumber(h[1]) + tonumber(ARGV[10])
  end
  n = n + k
  ts, Ts = string.format('%.3f', t), string.format('%.3f', T)
  redis.call('HSET', KEYS[1], 't', ts, 'T', Ts, 'n', n)
end
local c = h[4] or '0'
local cmax = tonumber(ARGV[16] or '0') or 0
if cmax > 0 then
  local cmin = tonumber(ARGV[15])
  local cv = tonumber(h[4]) or cmax
  if tonumber(ARGV[14]) > 0 then
    local tm = redis.call('TIME')
    local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
    if now >= (tonumber(h[5]) or 0) then
      cv = cv * tonumber(ARGV[17])
      redis.call('HSET', KEYS[1], 'cd', now + tonumber(ARGV[18]))
    end
  end
  cv = cv + tonumber(ARGV[13])
  if cmin > cmax then cmin = cmax end
  if cv < cmin then cv = cmin end
  if cv > cmax then cv = cmax end
  c = string.format('%.3f', cv)
  redis.call('HSET', KEYS[1], 'c', c)
end
if k > 0 or cmax > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {ts, Ts, n, c}
