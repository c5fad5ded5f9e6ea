-- Stock counter writes from movements and repairs.
-- ARGV: prefix, op ('add' | 'set' | 'safety'), sku, location, a, [b].
--   add: on_hand += a;  set: on_hand = a, safety = b;  safety: safety = a.
local op, sku, loc = ARGV[2], ARGV[3], ARGV[4]

local refused = refuse_write()
if refused then return refused end

local key = stock_key(sku, loc)
if op == 'add' then
  redis.call('HINCRBY', key, 'on_hand', ARGV[5])
elseif op == 'set' then
  redis.call('HSET', key, 'on_hand', ARGV[5], 'safety', ARGV[6])
elseif op == 'safety' then
  redis.call('HSET', key, 'safety', ARGV[5])
else
  return redis.error_reply('unknown counter op ' .. tostring(op))
end
local on_hand, reserved, safety = publish(sku, loc)
return reply({ ok = true, on_hand = on_hand, reserved = reserved, safety = safety })
