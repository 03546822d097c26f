-- backstop-redis: the leases out of a fleet's retry budget, prepended to the
-- scripts that take from and give to the bucket (and the grants out of a
-- fleet's ratio budget, to the script that syncs it).
-- KEYS[2] is a hash: worker token -> "tokens out:last heard ms:forget ms",
-- where the last is how long the worker may go unheard of (each worker says
-- its own: their refreshes may differ). Returns the tokens out of worker
-- `me`, and of the others, and how many others hold some; forgets (deletes)
-- the lease of a worker unheard of for longer than it said (it died), or
-- for longer than `forget` ms if it did not say.
local function leases_out(me, forget, now)
  local mine, others, count = 0, 0, 0
  local leases = redis.call('HGETALL', KEYS[2])
  for i = 1, #leases, 2 do
    local out, seen, own = string.match(leases[i + 1], '^([%d%.]+):(%d+):?(%d*)$')
    out, seen = tonumber(out), tonumber(seen)
    local unheard = tonumber(own) or forget
    if not (out and seen) then
      -- Unreadable: garbage, not a worker's.
      redis.call('HDEL', KEYS[2], leases[i])
    elseif leases[i] == me then
      mine = out
    elseif math.abs(now - seen) > unheard then
      -- Unheard of for too long (it died), or heard of further ahead than
      -- that (garbage: it would never be forgotten).
      redis.call('HDEL', KEYS[2], leases[i])
    else
      others, count = others + out, count + 1
    end
  end
  return mine, others, count
end

-- Writes worker `me`'s lease (none: no entry), heard from now, to be
-- forgotten after `forget` ms unheard.
local function lease_set(me, mine, now, forget)
  if mine > 0 then
    redis.call('HSET', KEYS[2], me, tostring(mine) .. ':' .. now .. ':' .. math.floor(forget))
  else
    redis.call('HDEL', KEYS[2], me)
  end
end

