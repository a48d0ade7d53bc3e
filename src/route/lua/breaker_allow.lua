-- breaker_allow: may a call go to this deployment? Mirrors brk_cell_allow in
-- src/route/breaker.c exactly.
-- KEYS: the breaker hash (<prefix>brk:{<id>}), the probe lease key.
-- ARGV: 1 token, 2 probe_lease_ms, 3 state_ttl_ms.
-- Hash fields: st (0 closed, 1 open, 2 half-open), ou (open until, ms),
-- cd (429 cool-down end, ms).
-- Returns {verdict, retry_in_ms, state, rate_limited}: verdict 0 allowed,
-- 1 denied (retry_in_ms), 2 probe (the caller holds the probe lease, SET NX
-- PX). An OPEN breaker whose time is up moves to HALF_OPEN here (lazily).
-- The clock is Redis TIME, so the workers' clocks never matter.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'st', 'ou', 'cd')
local st = tonumber(h[1]) or 0
local ou = tonumber(h[2]) or 0
local cd = tonumber(h[3]) or 0
if cd > now then return {1, cd - now, st, 1} end
if st == 0 then return {0, 0, 0, 0} end
if st == 1 then
  if now < ou then return {1, ou - now, 1, 0} end
  redis.call('HSET', KEYS[1], 'st', 2, 'hs', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, 0, 2, 0} end
local pt = redis.call('PTTL', KEYS[2])
if pt < 1 then pt = 1 end
return {1, pt, 2, 0}
