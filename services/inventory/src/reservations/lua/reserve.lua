-- ARGV: prefix, id, epoch, now_ms, expires_at_ms ('' = none), lines [{s,l,q}], claims
-- [{l,d,limit}], capacity ttl seconds.
-- Checks everything before writing anything: a rejection leaves no trace.
local id, epoch, now_ms, expires_at = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local lines = cjson.decode(ARGV[6])
local claims = cjson.decode(ARGV[7])

local refused = refuse_write() or check_epoch(epoch)
if refused then return refused end

local fp = fingerprint(lines)
local existing = redis.call('HMGET', res_key(id), 'state', 'fp')
if existing[1] then
  return reply({ dup = existing[1], same = existing[2] == fp })
end

-- Summed per key, so even a request that names a key twice cannot take more than is there.
local need, order = {}, {}
for _, l in ipairs(lines) do
  local key = stock_key(l.s, l.l)
  if not need[key] then
    need[key] = { s = l.s, l = l.l, q = 0 }
    order[#order + 1] = key
  end
  need[key].q = need[key].q + l.q
end
local short = {}
for _, key in ipairs(order) do
  local n = need[key]
  local on_hand, reserved, safety = counters(key)
  local available = math.max(0, on_hand - reserved - safety)
  if n.q > available then
    short[#short + 1] = { sku = n.s, location = n.l, requested = n.q, available = available }
  end
end
if #short > 0 then return reply({ short = short }) end

local full = full_locations(claims)
if #full > 0 then return reply({ full = full }) end

local stored = {}
for _, l in ipairs(lines) do
  redis.call('HINCRBY', stock_key(l.s, l.l), 'reserved', l.q)
  publish(l.s, l.l)
  stored[#stored + 1] = { s = l.s, l = l.l, q = l.q, c = 0, r = 0 }
end
local taken = take_capacity(claims, tonumber(ARGV[8]))

local key = res_key(id)
redis.call('HSET', key, 'state', 'PENDING', 'lines', cjson.encode(stored), 'fp', fp,
  'epoch', epoch, 'confirmed', '0', 'created_at', now_ms, 'cap', encode_array(taken))
if expires_at ~= '' then
  redis.call('HSET', key, 'expires_at', expires_at)
  redis.call('ZADD', EXPIRY, expires_at, id)
end
redis.call('ZADD', PENDING, now_ms, id)
return reply({ ok = true })
