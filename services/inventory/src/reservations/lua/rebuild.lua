-- ARGV: prefix, op ('begin' | 'finish' | 'status'), epoch, [lock ttl ms].
local op, epoch = ARGV[2], ARGV[3]
local EPOCH, FLAG, LOCK = P .. ':epoch', P .. ':rebuilding', P .. ':rebuild-lock'

if op == 'status' then
  if redis.call('EXISTS', FLAG) == 1 then return reply({ status = 'rebuilding' }) end
  local current = redis.call('GET', EPOCH)
  if not current then return reply({ status = 'missing' }) end
  return reply({ status = 'ready', epoch = current })
end

if op == 'begin' then
  if not redis.call('SET', LOCK, epoch, 'NX', 'PX', ARGV[4]) then
    return reply({ ok = false })
  end
  -- The new epoch is written first, so a hold prepared under the old one fails from now on.
  redis.call('SET', EPOCH, epoch)
  redis.call('SET', FLAG, epoch)
  return reply({ ok = true })
end

if op == 'check' then
  if redis.call('EXISTS', FLAG) == 0 then
    return reply({ err = 'epoch', current = redis.call('GET', EPOCH) or cjson.null })
  end
  return check_epoch(epoch) or reply({ ok = true })
end

if op == 'finish' then
  local refused = check_epoch(epoch)
  if refused then return refused end
  redis.call('DEL', FLAG, LOCK)
  -- Watchers missed whatever the rebuild replaced: tell them to take a fresh snapshot.
  redis.call('PUBLISH', P .. ':avail', cjson.encode({ gap = true }))
  return reply({ ok = true })
end

return redis.error_reply('unknown rebuild op ' .. tostring(op))
