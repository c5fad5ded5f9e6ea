-- Commit, release and expiry: the transitions that move counters.
-- ARGV: prefix, op ('commit' | 'release' | 'expire'), id, selection ('all' or [{s,l,q}]), now_ms.
local op, id, selection, now_ms = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])

local refused = refuse_write()
if refused then return refused end

local rec = load_record(id)
if not rec then return reply({ err = 'not_found' }) end

local target = ({ commit = 'COMMITTED', release = 'RELEASED', expire = 'EXPIRED' })[op]
if not is_held(rec.state) then return transition_error(rec, target) end

if op == 'expire' then
  if rec.confirmed or not rec.expires_at then return reply({ err = 'confirmed' }) end
  if rec.expires_at > now_ms then return reply({ err = 'not_due', at = rec.expires_at }) end
  local effects = release_remaining(rec)
  give_back_capacity(rec)
  finish(rec, 'EXPIRED')
  return reply({ ok = true, effects = effects })
end

-- Plan the whole selection before touching a counter, so a refused one changes nothing.
local plan = {}
if selection == 'all' then
  for i, l in ipairs(rec.lines) do
    local n = remaining(l)
    if n > 0 then plan[#plan + 1] = { i, n } end
  end
else
  local taken = {}
  for _, w in ipairs(cjson.decode(selection)) do
    local index = nil
    for i, l in ipairs(rec.lines) do
      if l.s == w.s and l.l == w.l then index = i break end
    end
    if not index then return reply({ err = 'unknown_line', sku = w.s, location = w.l }) end
    local left = remaining(rec.lines[index]) - (taken[index] or 0)
    if w.q > left then
      return reply({ err = 'exceeds', sku = w.s, location = w.l, requested = w.q, remaining = left })
    end
    taken[index] = (taken[index] or 0) + w.q
    plan[#plan + 1] = { index, w.q }
  end
end

local effects = {}
for _, p in ipairs(plan) do
  local l, n = rec.lines[p[1]], p[2]
  local key = stock_key(l.s, l.l)
  if op == 'commit' then
    l.c = l.c + n
    redis.call('HINCRBY', key, 'on_hand', -n)
  else
    l.r = l.r + n
  end
  redis.call('HINCRBY', key, 'reserved', -n)
  publish(l.s, l.l)
  effects[#effects + 1] = { sku = l.s, location = l.l, qty = n }
end

local done, any_committed = true, false
for _, l in ipairs(rec.lines) do
  if remaining(l) > 0 then done = false end
  if l.c > 0 then any_committed = true end
end
if done then
  finish(rec, any_committed and 'COMMITTED' or 'RELEASED')
else
  redis.call('HSET', rec.key, 'lines', cjson.encode(rec.lines))
end
return reply({ ok = true, effects = effects })
