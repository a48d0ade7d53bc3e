-- limit_check: GCRA over n limiter keys, all-or-nothing (gw_state_limit_check).
-- KEYS: n limiter keys (<prefix>rl:<scope>, each holding its TAT in ms).
-- ARGV: rate_per_min, burst, cost for each key (3 per key).
-- Returns {0, 0, 0} allowed (every key with cost > 0 written with
-- PX = new TAT - now), {1, retry_ms, i} denied by key i (1-based, the worst
-- key), {2, 0, i} key i can never fit (cost > burst). A denial writes nothing.
-- The clock is Redis TIME, never the worker's.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local nt, worst, widx = {}, -1, 0
for i = 1, #KEYS do
  local rate, burst, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  if cost > burst then return {2, 0, i} end
  local T = 60000 / rate
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  nt[i] = tat + cost * T
  local over = nt[i] - now - burst * T
  if over > 0 and over > worst then worst, widx = over, i end
end
if widx > 0 then return {1, math.ceil(worst), widx} end
for i = 1, #KEYS do
  if tonumber(ARGV[3*i]) > 0 then
    redis.call('SET', KEYS[i], string.format('%.3f', nt[i]), 'PX',
               math.max(1, math.ceil(nt[i] - now)))
  end
end
return {0, 0, 0}
