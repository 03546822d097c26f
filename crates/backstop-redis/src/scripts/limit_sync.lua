-- backstop-redis: one worker's sync with a fleet's shared concurrency limit.
--
-- The fleet has ARGV[4] places; each worker holds some of them, written
-- in KEYS[1]. A sync grants this worker what it asks for, as far as places
-- are free. While another worker wants more places than it holds, no
-- worker is granted more than a fair share (the places over the workers
-- that want some), or more than the free places the others need to reach
-- theirs leave, if that is more. A worker's calls running hold their places
-- until they end, granted or not: it is counted as holding the larger of
-- its grant and its places in use, and it lets no new call in while its
-- calls running are more than its grant, so a busy worker cut to its share
-- gives places back as its calls end.
-- KEYS[1]  the places held (a hash: worker token -> "places:demand:last
--          heard ms:how long it may go unheard, ms")
-- ARGV[1]  places wanted
-- ARGV[2]  the worker's demand (calls running and waiting)
-- ARGV[3]  places it has in use
-- ARGV[4]  the fleet's places
-- ARGV[5]  1: it wants one place kept while idle (granted only while half
--          the places stay free and no other worker wants more than it holds)
-- ARGV[6]  the key's time to live, ms
-- ARGV[7]  after how many ms unheard this worker's lease is to be forgotten
--          (it died); each worker says its own
-- ARGV[8]  the worker's token
-- ARGV[9]  1: the worker is leaving (its lease goes back)
-- Returns {places granted (the worker's limit now), places free after,
-- workers heard from (with this one), 1 if another worker wants more than
-- it holds}.
-- Leases and arguments that are not whole numbers within bounds are taken
-- as missing.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local function num(x, lo, hi, default)
  x = tonumber(x)
  if x and x == x and x >= lo and x <= hi then
    return math.floor(x)
  end
  return default
end
local capacity = num(ARGV[4], 1, 1e9, 1)
local forget = num(ARGV[7], 0, 1e15, 60000)
local me = ARGV[8]
local held, workers, wanting, starving = 0, 0, 0, 0
local others = {}
local leases = redis.call('HGETALL', KEYS[1])
for i = 1, #leases, 2 do
  if leases[i] ~= me then
    local p, d, seen, own = string.match(leases[i + 1], '^(%d+):(%d+):(%d+):?(%d*)$')
    p, d, seen = tonumber(p), tonumber(d), tonumber(seen)
    -- Unreadable, unheard of for longer than the worker said it may be (it
    -- died), or heard of further ahead than that (garbage: it would never
    -- be forgotten).
    if not (p and d and seen) or math.abs(now - seen) > (tonumber(own) or forget) then
      redis.call('HDEL', KEYS[1], leases[i])
    else
      held, workers = held + p, workers + 1
      others[#others + 1] = {p, d}
      if d > p then
        starving = 1
      end
      if d > 0 then
        wanting = wanting + 1
      end
    end
  end
end
local free = math.max(0, capacity - held)
-- A fair share, and the free places the others who want more need to
-- reach theirs.
local share = math.max(1, math.floor(capacity / (wanting + 1)))
local needed = 0
for _, o in ipairs(others) do
  needed = needed + math.max(0, math.min(o[2], share) - o[1])
end
if ARGV[9] == '1' then
  redis.call('HDEL', KEYS[1], me)
  return {0, free, workers, starving}
end
local in_use = num(ARGV[3], 0, 1e9, 0)
local demand = num(ARGV[2], 0, 1e9, 0)
local want = num(ARGV[1], 0, 1e9, 0)
if starving == 1 then
  want = math.min(want, math.max(share, free - needed))
end
if ARGV[5] == '1' and want < 1 and starving == 0 and free - 1 >= capacity / 2 then
  want = 1
end
local grant = math.min(want, free)
-- Calls running hold their places until they end, granted or not.
local held_here = math.max(grant, math.min(in_use, free))
if held_here > 0 or demand > 0 then
  redis.call('HSET', KEYS[1], me, held_here .. ':' .. demand .. ':' .. now .. ':' .. forget)
else
  redis.call('HDEL', KEYS[1], me)
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {grant, free - held_here, workers + 1, starving}
