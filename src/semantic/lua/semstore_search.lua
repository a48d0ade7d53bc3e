-- semstore_search: the candidate entries of one query's LSH bands.
-- ARGV: key prefix, namespace, maxc, then one band key (16 hex digits) per band.
-- Candidates are ranked by how many bands they share with the query: a true
-- near-duplicate collides in most bands, an unrelated entry in one. Each
-- bucket contributes at most maxc sampled ids, so the script's work is
-- bounded by bands x maxc whatever the index size.
-- Returns a flat array id1, blob1, id2, blob2, ... (at most maxc pairs);
-- ids whose entry expired are removed from their bucket.
local pfx, ns, maxc = ARGV[1], ARGV[2], tonumber(ARGV[3])
local count, where, ids, out = {}, {}, {}, {}
for i = 4, #ARGV do
  local bk = pfx .. 'sb:' .. ns .. ':' .. ARGV[i]
  for _, id in ipairs(redis.call('SRANDMEMBER', bk, maxc)) do
    if count[id] then count[id] = count[id] + 1
    else count[id] = 1; where[id] = bk; ids[#ids + 1] = id end
  end
end
table.sort(ids, function(a, b) return count[a] > count[b] end)
for i = 1, math.min(#ids, maxc) do
  local id = ids[i]
  local blob = redis.call('GET', pfx .. 'sv:' .. ns .. ':' .. id)
  if blob then out[#out + 1] = id; out[#out + 1] = blob
  else redis.call('SREM', where[id], id) end
end
return out
