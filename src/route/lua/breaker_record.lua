-- breaker_record: adds an outcome to the time-bucketed window and applies
-- the transition. Mirrors brk_cell_record in src/route/breaker.c exactly.
-- KEYS: the breaker hash (<prefix>brk:{<id>}), the probe lease key.
-- ARGV: 1 kind (0 success, 1 failure, 2 ignored, 3 rate limited), 2 probe,
-- 3 token, 4 retry_after_ms, 5 jitter_u, 6 bucket_ms, 7 window_ms,
-- 8 min_calls, 9 failure_rate, 10 consecutive_failures, 11 open_base_ms,
-- 12 open_max_ms, 13 jitter, 14 half_open_successes, 15 ttl_ms,
-- 16 rate_limit_default_ms, 17 rate_limit_max_ms; kind 4 (a batch of
-- non-probe outcomes aggregated by the worker): 18 successes, 19 failures,
-- 20 failures after the last success (the batch's trailing run).
-- Returns {state, open_remaining_ms, cooldown_remaining_ms, open_count,
-- window_calls, window_failures, consecutive_failures}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind = tonumber(ARGV[1])
local bms, wms = tonumber(ARGV[6]), tonumber(ARGV[7])
local nb = math.floor(wms / bms)
local h = redis.call('HMGET', KEYS[1], 'st', 'oc', 'cf', 'hs', 'ou', 'cd', 'we')
local st, oc, cf = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
local hs, ou, cd = tonumber(h[4]) or 0, tonumber(h[5]) or 0, tonumber(h[6]) or 0
local we = tonumber(h[7]) or 0
local probe = ARGV[2] == '1' and st == 2
if ARGV[2] == '1' and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
end
local function window()
  local f = {}
  for i = 0, nb - 1 do f[#f+1] = 's'..i; f[#f+1] = 'c'..i; f[#f+1] = 'f'..i end
  local v = redis.call('HMGET', KEYS[1], unpack(f))
  local calls, fails = 0, 0
  for i = 0, nb - 1 do
    local s = tonumber(v[3*i+1]) or -1
    if s > now - wms and s >= we then
      calls = calls + (tonumber(v[3*i+2]) or 0)
      fails = fails + (tonumber(v[3*i+3]) or 0)
    end
  end
  return calls, fails
end
local function trip()
  oc = oc + 1
  local d, mx = tonumber(ARGV[11]), tonumber(ARGV[12])
  local i = 1
  while i < oc and d < mx do d = d * 2; i = i + 1 end
  if d > mx then d = mx end
  d = math.floor(d * (1 - tonumber(ARGV[13]) * tonumber(ARGV[5])))
  if d < 1 then d = 1 end
  st = 1; ou = now + d; cf = 0; hs = 0; we = now + 1
end
local function bucket_add(calls, fails)
  local b = math.floor(now / bms)
  local i = b % nb
  if tonumber(redis.call('HGET', KEYS[1], 's'..i)) ~= b * bms then
    redis.call('HSET', KEYS[1], 's'..i, b * bms, 'c'..i, 0, 'f'..i, 0)
  end
  redis.call('HINCRBY', KEYS[1], 'c'..i, calls)
  if fails > 0 then redis.call('HINCRBY', KEYS[1], 'f'..i, fails) end
end
if kind == 3 then
  local d = tonumber(ARGV[4])
  if d <= 0 then d = tonumber(ARGV[16]) end
  if d > tonumber(ARGV[17]) then d = tonumber(ARGV[17]) end
  if now + d > cd then cd = now + d end
elseif kind == 4 then
  -- outside CLOSED, non-probe outcomes change nothing (as one by one)
  local ok, fl, tail = tonumber(ARGV[18]), tonumber(ARGV[19]), tonumber(ARGV[20])
  if st == 0 and ok + fl > 0 then
    bucket_add(ok + fl, fl)
    if ok > 0 then cf = tail else cf = cf + fl end
    if fl > 0 then
      local calls, fails = window()
      local lim = tonumber(ARGV[10])
      if (calls >= tonumber(ARGV[8]) and fails >= tonumber(ARGV[9]) * calls)
         or (lim > 0 and cf >= lim) then trip() end
    end
  end
elseif kind == 0 or kind == 1 then
  local failed = kind == 1
  if st == 0 then
    bucket_add(1, failed and 1 or 0)
    if not failed then cf = 0 else
      cf = cf + 1
      local calls, fails = window()
      local lim = tonumber(ARGV[10])
      if (calls >= tonumber(ARGV[8]) and fails >= tonumber(ARGV[9]) * calls)
         or (lim > 0 and cf >= lim) then trip() end
    end
  elseif probe and failed then trip()
  elseif probe then
    hs = hs + 1
    if hs >= tonumber(ARGV[14]) then st = 0; oc = 0; cf = 0; hs = 0; we = now + 1 end
  end
end
redis.call('HSET', KEYS[1], 'st', st, 'oc', oc, 'cf', cf, 'hs', hs, 'ou', ou, 'cd', cd,
           'we', we)
redis.call('PEXPIRE', KEYS[1], ARGV[15])
local calls, fails = window()
local orem, crem = 0, 0
if st == 1 and ou > now then orem = ou - now end
if cd > now then crem = cd - now end
return {st, orem, crem, oc, calls, fails, cf}
