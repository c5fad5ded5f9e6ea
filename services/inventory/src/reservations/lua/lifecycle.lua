-- The small transitions that only touch one record, in one script to keep one place to read.
-- ARGV: prefix, op ('durable' | 'undo' | 'confirm' | 'extend'), id, [expires_at_ms].
local op, id = ARGV[2], ARGV[3]

local refused = refuse_write()
if refused then return refused end

local rec = load_record(id)
if not rec then return reply({ err = 'not_found' }) end

if op == 'durable' then
  if rec.state == 'PENDING' then
    redis.call('HSET', rec.key, 'state', 'DURABLE')
    redis.call('ZREM', PENDING, id)
  end
  return reply({ ok = true })
end

if op == 'undo' then
  if rec.state == 'DURABLE' then return reply({ err = 'durable' }) end
  if rec.state ~= 'PENDING' then return transition_error(rec, 'RELEASED') end
  release_remaining(rec)
  give_back_capacity(rec)
  -- Forget the id entirely: nothing durable ever used it, so a retry may hold it afresh.
  redis.call('DEL', rec.key)
  redis.call('ZREM', EXPIRY, id)
  redis.call('ZREM', PENDING, id)
  return reply({ ok = true })
end

if not is_held(rec.state) then return transition_error(rec, 'HELD') end

if op == 'confirm' then
  redis.call('HSET', rec.key, 'confirmed', '1')
  redis.call('HDEL', rec.key, 'expires_at')
  redis.call('ZREM', EXPIRY, id)
  return reply({ ok = true })
end

if op == 'extend' then
  if rec.confirmed then return reply({ err = 'confirmed' }) end
  redis.call('HSET', rec.key, 'expires_at', ARGV[4])
  redis.call('ZADD', EXPIRY, ARGV[4], id)
  return reply({ ok = true })
end

return redis.error_reply('unknown lifecycle op ' .. tostring(op))
