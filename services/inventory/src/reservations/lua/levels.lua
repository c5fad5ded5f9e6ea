-- Counters of many keys in one read-only step. ARGV: prefix, then sku, location pairs.
-- Answers the change sequence number the read saw on the first line (see common.lua), then one
-- line "on_hand reserved safety" per key, in the order asked: one reply for the
-- caller to parse instead of thousands (an availability call over 20 SKUs × 200 locations
-- reads 4,000 keys), and no command parsing per key on the server.
local out = { redis.call('GET', SEQ) or '0' }
for i = 2, #ARGV, 2 do
  local v = redis.call('HMGET', stock_key(ARGV[i], ARGV[i + 1]), 'on_hand', 'reserved', 'safety')
  out[#out + 1] = (v[1] or '0') .. ' ' .. (v[2] or '0') .. ' ' .. (v[3] or '0')
end
return table.concat(out, '\n')
