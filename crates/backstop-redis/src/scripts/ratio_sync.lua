-- backstop-redis: one worker's sync with a fleet's ratio retry budget.
--
-- The fleet's rule is one ratio budget's rule over the fleet's traffic:
-- retries in the window at most FLOOR + RATIO x the requests in the window,
-- with one floor for the whole fleet. The window is SLICES slices of
-- window / SLICES ms on Redis's clock, counted in KEYS[1] (q0..q9 requests,
-- r0..r9 retries, win the newest slice's number). A worker reports what it
-- counted since its last sync and is granted a part of the room left (the
-- rule's allowance less the retries counted, less what the others were
-- granted and may not have reported spending yet): at most its part of the
-- fleet's requests, (mine + 1) / (requests + workers).
-- KEYS[1]  the window (a hash)
-- KEYS[2]  the grants out (a hash: worker token -> "retries granted:last heard ms")
-- ARGV[1]  requests since the worker's last sync (>= 0)
-- ARGV[2]  retries since its last sync, less refunds (may be negative)
-- ARGV[3]  the ratio        ARGV[4]  the floor, retries per window
-- ARGV[5]  the window, ms
-- ARGV[6]  the worker's requests in its own window (its weight)
-- ARGV[7]  the keys' time to live, ms
-- ARGV[8]  after how many ms unheard this worker's grant is to be forgotten
--          (it died); each worker says its own
-- ARGV[9]  the worker's token
-- ARGV[10] 1: the worker is leaving (it reports, is granted nothing and
--          its grant is forgotten)
-- Returns {the allowance granted (retries, as a string), the fleet's
-- requests in the window, its retries in the window, workers heard from}.
-- Fields and arguments that are not finite numbers within bounds are
-- taken as missing (0).
local SLICES = 10
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local function num(x, lo, hi, default)
  x = tonumber(x)
  if x and x == x and x >= lo and x <= hi then
    return x
  end
  return default
end
local slice = math.max(1, math.floor(num(ARGV[5], 1, 1e12, 10000) / SLICES))
local idx = math.floor(now / slice)
local last = num(redis.call('HGET', KEYS[1], 'win'), 0, 1e18, nil)
if last then
  last = math.floor(last)
  if last > idx + SLICES then
    -- Further ahead than a window: garbage, not a clock step; start afresh.
    last = nil
  elseif last > idx then
    -- Redis's clock stepped back: count on in the newest slice.
    idx = last
  end
end
local names = {}
for i = 0, SLICES - 1 do
  names[#names + 1] = 'q' .. i
  names[#names + 1] = 'r' .. i
end
local got = redis.call('HMGET', KEYS[1], unpack(names))
local q, r = {}, {}
for i = 0, SLICES - 1 do
  q[i] = num(got[2 * i + 1], 0, 1e15, 0)
  r[i] = num(got[2 * i + 2], 0, 1e15, 0)
end
-- Slices that left the window since the newest counted are emptied for reuse.
if not last or idx - last >= SLICES then
  for i = 0, SLICES - 1 do
    q[i], r[i] = 0, 0
  end
else
  for k = last + 1, idx do
    q[k % SLICES], r[k % SLICES] = 0, 0
  end
end
local cur = idx % SLICES
q[cur] = q[cur] + num(ARGV[1], 0, 1e12, 0)
r[cur] = math.max(0, r[cur] + num(ARGV[2], -1e12, 1e12, 0))
local requests, retries, set = 0, 0, {}
for i = 0, SLICES - 1 do
  requests, retries = requests + q[i], retries + r[i]
  set[#set + 1] = 'q' .. i
  set[#set + 1] = tostring(q[i])
  set[#set + 1] = 'r' .. i
  set[#set + 1] = tostring(r[i])
end
set[#set + 1] = 'win'
set[#set + 1] = tostring(idx)
redis.call('HSET', KEYS[1], unpack(set))

local _, others, workers = leases_out(ARGV[9], num(ARGV[8], 0, 1e15, 60000), now)
local ratio, floor = num(ARGV[3], 0, 1000, 0), num(ARGV[4], 0, 1e15, 0)
local room = floor + ratio * requests - retries
local grant = 0
if ARGV[10] == '1' then
  redis.call('HDEL', KEYS[2], ARGV[9])
else
  local mine = num(ARGV[6], 0, 1e15, 0)
  local share = math.min(1, (mine + 1) / (requests + workers + 1))
  grant = math.floor(math.max(0, math.min(room - others, room * share)) * 1000) / 1000
  local forget = math.floor(num(ARGV[8], 0, 1e15, 60000))
  redis.call('HSET', KEYS[2], ARGV[9], string.format('%.3f', grant) .. ':' .. now .. ':' .. forget)
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return {string.format('%.3f', grant), requests, retries, workers + 1}
