-- latency_read: every deployment's latency values and adaptive concurrency
-- cap in one reply.
-- KEYS: <prefix>lat:{<id>} per deployment.
-- Returns one {ttft, total, samples, cap} per key ('0' for missing values).
local out = {}
for i, k in ipairs(KEYS) do
  local h = redis.call('HMGET', k, 't', 'T', 'n', 'c')
  out[i] = {h[1] or '0', h[2] or '0', h[3] or '0', h[4] or '0'}
end
return out
