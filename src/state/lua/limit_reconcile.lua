-- limit_reconcile: applies a signed delta to n limiter keys once per request
-- (gw_state_limit_reconcile).
-- KEYS: marker (<prefix>rr:<request_id>), then n limiter keys.
-- ARGV: marker_ttl_ms, then rate_per_min and a signed delta for each key.
-- Returns 1 when applied, 0 when already applied (the marker existed). A
-- refund never moves a TAT below now (the key is deleted instead); a charge
-- is never denied.
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
for i = 2, #KEYS do
  local rate, delta = tonumber(ARGV[2*i-2]), tonumber(ARGV[2*i-1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  local nt = tat + delta * 60000 / rate
  if nt <= now then redis.call('DEL', KEYS[i])
  else redis.call('SET', KEYS[i], string.format('%.3f', nt), 'PX', math.ceil(nt - now)) end
end
return 1
