-- backstop-redis: the leases out of a fleet's retry budget, prepended to the
-- scripts that take from and give to the bucket (and the grants out of a
-- fleet's ratio budget, to the script that syncs it).
-- KEYS[2] is a hash: worker token -> "tokens out:last heard ms". Returns the
-- tokens out of worker `me`, and of the others, and how many others hold
-- some; forgets (deletes) the lease of a worker unheard of for more than
-- `forget` ms (it died).
local function leases_out(me, forget, now)
  local mine, others, count = 0, 0, 0
  local leases = redis.call('HGETALL', KEYS[2])
  for i = 1, #leases, 2 do
    local out, seen = string.match(leases[i + 1], '^([%d%.]+):(%d+)$')
    out, seen = tonumber(out or 0), tonumber(seen or 0)
    if leases[i] == me then
      mine = out
    elseif now - seen > forget then
      redis.call('HDEL', KEYS[2], leases[i])
    else
      others, count = others + out, count + 1
    end
  end
  return mine, others, count
end

-- Writes worker `me`'s lease (none: no entry), heard from now.
local function lease_set(me, mine, now)
  if mine > 0 then
    redis.call('HSET', KEYS[2], me, tostring(mine) .. ':' .. now)
  else
    redis.call('HDEL', KEYS[2], me)
  end
end

