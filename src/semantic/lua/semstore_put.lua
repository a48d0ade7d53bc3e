-- semstore_put: stores one entry and adds its id to each band's bucket.
-- ARGV: key prefix, namespace, id, ttl_s, blob, per-bucket cap, then one band
-- key (16 hex digits) per band.
-- Keys: <prefix>sv:<ns>:<id> (the blob, EX ttl) and <prefix>sb:<ns>:<band>
-- (a SET of ids, trimmed to the cap by SPOP, EX at least the newest entry's ttl).
-- Returns 1.
local pfx, ns, id, ttl, blob, cap = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
redis.call('SET', pfx .. 'sv:' .. ns .. ':' .. id, blob, 'EX', ttl)
for i = 7, #ARGV do
  local bk = pfx .. 'sb:' .. ns .. ':' .. ARGV[i]
  redis.call('SADD', bk, id)
  if redis.call('SCARD', bk) > cap then redis.call('SPOP', bk) end
  if redis.call('TTL', bk) < ttl then redis.call('EXPIRE', bk, ttl) end
end
return 1
