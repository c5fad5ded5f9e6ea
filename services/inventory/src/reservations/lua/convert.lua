-- ARGV: prefix, hold id, order id, epoch, now_ms, expires_at_ms ('' = none), claims, cap ttl.
-- The counters do not move: the units pass from the hold to the order inside one script, so no
-- other buyer can take them in between.
local hold_id, order_id, epoch, now_ms, expires_at = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local claims = cjson.decode(ARGV[7])

local refused = refuse_write() or check_epoch(epoch)
if refused then return refused end

local hold = load_record(hold_id)
if not hold then return reply({ err = 'not_found' }) end
if not is_held(hold.state) then return transition_error(hold, 'COMMITTED') end

local lines = {}
for _, l in ipairs(hold.lines) do
  local n = remaining(l)
  if n > 0 then lines[#lines + 1] = { s = l.s, l = l.l, q = n, c = 0, r = 0 } end
end
local fp = fingerprint(lines)

local existing = redis.call('HMGET', res_key(order_id), 'state', 'fp')
if existing[1] then return reply({ dup = existing[1], same = existing[2] == fp }) end

local full = full_locations(claims)
if #full > 0 then return reply({ full = full }) end

give_back_capacity(hold)
redis.call('DEL', hold.key)
redis.call('ZREM', EXPIRY, hold_id)
redis.call('ZREM', PENDING, hold_id)

local taken = take_capacity(claims, tonumber(ARGV[8]))
local key = res_key(order_id)
redis.call('HSET', key, 'state', 'PENDING', 'lines', cjson.encode(lines), 'fp', fp,
  'epoch', epoch, 'confirmed', '0', 'created_at', now_ms, 'cap', encode_array(taken))
if expires_at ~= '' then
  redis.call('HSET', key, 'expires_at', expires_at)
  redis.call('ZADD', EXPIRY, expires_at, order_id)
end
redis.call('ZADD', PENDING, now_ms, order_id)
return reply({ ok = true })
