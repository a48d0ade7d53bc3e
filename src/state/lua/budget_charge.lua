-- budget_charge: adds a spend to the day and month counters once per request
-- (gw_state_budget_charge).
-- KEYS: marker (<prefix>bc:<request_id>), day key, month key.
-- ARGV: micro-USD, marker_ttl_ms, day ttl s, month ttl s.
-- Returns 1 when applied, 0 when already applied.
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('INCRBY', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[4])
return 1
