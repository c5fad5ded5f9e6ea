-- Shared prelude, prepended to every gate script (see redis.rs). ARGV[1] is always the key
-- prefix. Keys are derived here rather than passed as KEYS because a reservation's stock keys are
-- known only once its record is read; that is fine on standalone and Sentinel Redis, and is why
-- cluster mode would need line-by-line scripts with compensation instead.
local P = ARGV[1]
local EXPIRY = P .. ':expiry'
local PENDING = P .. ':pending'
local TOMBSTONE_SECS = 7 * 24 * 3600
-- Numbers every counter change, so a replica's cache can tell which of two values is newer.
local SEQ = P .. ':seq'
-- The changes this step made, returned with its reply: the replica that made them updates its
-- cache before any pub/sub message arrives, and so reads its own writes.
local CHANGED = {}

local function stock_key(sku, loc) return P .. ':stock:{' .. sku .. '}:' .. loc end
local function res_key(id) return P .. ':res:' .. id end
local function cap_key(loc, day) return P .. ':cap:' .. loc .. ':' .. day end

local function reply(t)
  if #CHANGED > 0 then t.changed = CHANGED end
  return cjson.encode(t)
end

local function counters(key)
  local v = redis.call('HMGET', key, 'on_hand', 'reserved', 'safety')
  return tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
end

-- Every counter change is announced in the same step that made it, so a watcher on any replica
-- sees every change, in order, with the values it produced and its sequence number.
local function publish(sku, loc)
  local on_hand, reserved, safety = counters(stock_key(sku, loc))
  local change = { sku = sku, location = loc, on_hand = on_hand, reserved = reserved,
    safety = safety, seq = redis.call('INCR', SEQ) }
  redis.call('PUBLISH', P .. ':avail', cjson.encode(change))
  CHANGED[#CHANGED + 1] = change
  return on_hand, reserved, safety
end

-- Writes are refused while a rebuild replaces the contents, and when the epoch marker is gone
-- (Redis lost its data): counters written then would be partial and silently wrong.
local function refuse_write()
  if redis.call('EXISTS', P .. ':rebuilding') == 1 then
    return reply({ err = 'unavailable', reason = 'rebuilding' })
  end
  if redis.call('EXISTS', P .. ':epoch') == 0 then
    return reply({ err = 'unavailable', reason = 'epoch missing' })
  end
  return nil
end

local function is_held(state) return state == 'PENDING' or state == 'DURABLE' end

-- The reservation status as the domain names it.
local function status_of(state)
  if is_held(state) then return 'HELD' end
  return state
end

local function load_record(id)
  local key = res_key(id)
  local h = redis.call('HMGET', key, 'state', 'lines', 'expires_at', 'confirmed', 'cap', 'fp')
  if not h[1] then return nil end
  return {
    key = key, id = id, state = h[1], lines = cjson.decode(h[2]),
    expires_at = tonumber(h[3]), confirmed = h[4] == '1',
    cap = cjson.decode(h[5] or '[]'), fp = h[6],
  }
end

local function transition_error(rec, to)
  return reply({ err = 'transition', from = status_of(rec.state), to = to })
end

local function remaining(line) return line.q - line.c - line.r end

-- Byte order, like Rust's str ordering; Lua's own `<` on strings follows the C locale.
local function bytes_lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- The same fingerprint as `fingerprint` in mod.rs: lines as a set.
local function fingerprint(lines)
  local parts = {}
  for _, l in ipairs(lines) do
    parts[#parts + 1] = l.s .. '|' .. l.l .. '|' .. string.format('%d', l.q)
  end
  table.sort(parts, bytes_lt)
  return table.concat(parts, ';')
end

local function encode_array(t)
  if #t == 0 then return '[]' end
  return cjson.encode(t)
end

-- A finished reservation stays as a tombstone so a late replay is answered, not re-held.
local function finish(rec, state)
  redis.call('HSET', rec.key, 'state', state, 'lines', cjson.encode(rec.lines))
  redis.call('HDEL', rec.key, 'expires_at')
  redis.call('ZREM', EXPIRY, rec.id)
  redis.call('ZREM', PENDING, rec.id)
  redis.call('EXPIRE', rec.key, TOMBSTONE_SECS)
end

local function give_back_capacity(rec)
  for _, c in ipairs(rec.cap) do
    local key = cap_key(c.l, c.d)
    if (tonumber(redis.call('GET', key)) or 0) > 0 then redis.call('DECR', key) end
  end
end

-- Lowers `reserved` by what remains on every line, and returns the effects.
local function release_remaining(rec)
  local effects = {}
  for _, l in ipairs(rec.lines) do
    local n = remaining(l)
    if n > 0 then
      l.r = l.r + n
      redis.call('HINCRBY', stock_key(l.s, l.l), 'reserved', -n)
      publish(l.s, l.l)
      effects[#effects + 1] = { sku = l.s, location = l.l, qty = n }
    end
  end
  return effects
end

-- Capacity checks for a list of claims {l, d, limit}; returns the full locations.
local function full_locations(claims)
  local full = {}
  for _, c in ipairs(claims) do
    local used = tonumber(redis.call('GET', cap_key(c.l, c.d))) or 0
    if used + 1 > c.limit then full[#full + 1] = c.l end
  end
  return full
end

local function take_capacity(claims, ttl)
  local taken = {}
  for _, c in ipairs(claims) do
    local key = cap_key(c.l, c.d)
    redis.call('INCR', key)
    redis.call('EXPIRE', key, ttl)
    taken[#taken + 1] = { l = c.l, d = c.d }
  end
  return taken
end

local function check_epoch(expected)
  local current = redis.call('GET', P .. ':epoch')
  if current ~= expected then
    return reply({ err = 'epoch', current = current or cjson.null })
  end
  return nil
end
