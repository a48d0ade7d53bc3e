-- unlock_if_owner: releases a lock only if the caller holds it (cache
-- unlock, idempotency release).
-- KEYS: lock. ARGV: owner. Returns 1 when released, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
