-- value_or_lock: the stored value, else the lock (cache get_or_lock on
-- c:/cl:, idempotency claim on id:/il:).
-- KEYS: value, lock. ARGV: owner, lock_ms, refresh ("1" skips the value).
-- Returns {1, bytes} hit, {2} locked by the caller (taken now, or already
-- held by the same owner: its lease is renewed), {3, pttl} locked by another.
-- A lock released as "~<owner>" (unlock_if_owner, complete) is free for
-- anyone but that owner: a late copy of its own claim takes nothing.
if ARGV[3] ~= '1' then
  local v = redis.call('GET', KEYS[1])
  if v then return {1, v} end
end
local cur = redis.call('GET', KEYS[2])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {2}
end
if cur == false or (string.sub(cur, 1, 1) == '~' and cur ~= '~' .. ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {2}
end
return {3, redis.call('PTTL', KEYS[2])}
