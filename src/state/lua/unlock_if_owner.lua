-- unlock_if_owner: releases a lock only if the caller holds it (cache
-- unlock, idempotency release), leaving "~<owner>" for ARGV[2] ms so that a
-- late copy of the owner's own claim (value_or_lock, admit) cannot take it
-- again; anyone else may. An empty key gets the same mark (the claim may
-- still be on its way).
-- KEYS: lock. ARGV: owner, tombstone ttl_ms. Returns 1 when released, else 0.
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('SET', KEYS[1], '~' .. ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == false then redis.call('SET', KEYS[1], '~' .. ARGV[1], 'PX', ARGV[2]) end
return 0
