-- store_and_unlock: stores a value and releases the lock if the owner holds
-- it (cache put, idempotency complete).
-- KEYS: value, lock. ARGV: bytes, ttl_s, owner ("" = none), nx ("1" = keep
-- the first value).
-- Returns 1 when stored, 0 when a value was kept (nx).
local applied = 1
if ARGV[4] == '1' then
  if not redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') then applied = 0 end
else
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
end
return applied
