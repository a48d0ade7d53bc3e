-- latency_read: every deployment's latency values in one reply.
-- KEYS: <prefix>lat:{<id>} per deployment.
-- Returns one {ttft, total, samples} per key ('0' for missing values).
local out = {}
for i, k in ipairs(KEYS) do
  local h = redis.call('HMGET', k, 't', 'T', 'n')
  out[i] = {h[1] or '0', h[2] or '0', h[3] or '0'}
end
return out
