-- backstop-redis: one worker's sync with a fleet's shared pace.
--
-- The rate: one for the whole fleet, learned as one pacer learns it (TCP
-- CUBIC, RFC 8312, applied to request rates, as the AWS SDKs' adaptive
-- retry mode does), from every worker's reports, on the Redis server's
-- clock. A refusal drops it to BETA times the rate the fleet was sending;
-- successes grow it along the cubic, never past twice what the fleet sends.
--
-- The slots: GCRA, the generic cell rate algorithm (ATM Forum TM 4.0, as
-- redis-cell uses it). One theoretical arrival time (TAT) for the fleet;
-- a grant of n slots starts at TAT - tolerance (or now) and moves TAT on by
-- n emission intervals, so the workers together send at the rate.
--
-- KEYS[1]  the pace (a hash)
-- ARGV[1]  calls the worker sent since its last sync
-- ARGV[2]  its successes while pacing since its last sync
-- ARGV[3]  1 if it was refused (throttled) since its last sync
-- ARGV[4]  a limit the server stated, calls per second (0: none)
-- ARGV[5]  how long that limit holds, ms
-- ARGV[6]  slots wanted
-- ARGV[7]  min rate      ARGV[8]  max rate      ARGV[9]  initial rate (0: none)
-- ARGV[10] min ms between decreases   ARGV[11] burst (slots)
-- ARGV[12] the latest a grant may start, µs from now
-- ARGV[13] the key's time to live, ms
-- ARGV[14] how late workers' reports of their sends may be, µs (2 refreshes)
-- ARGV[15] the worker's own rate now (0: not pacing), to carry on with if
--          Redis lost the pace
-- Returns {the rate, calls per second as a string ('0': not pacing), µs
-- until the first granted slot, slots granted, the fleet's measured send
-- rate in milli-calls per second}.
-- The fleet's send rate is measured as one pacer measures its own: the
-- sends in the last 2 s, kept in SLICES slices of SLICE µs from the pace's
-- birth, divided by the time those slices cover (1.75-2 s), or the pace's
-- life if shorter, at least 0.1 s.
local BETA, C, SECOND, SLICE, SLICES = 0.7, 0.4, 1000000, 250000, 8
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local f = redis.call('HMGET', KEYS[1], 'rate', 'max', 'dec', 'tat', 'win', 'born', 'ceil', 'ceil_until', 'hold',
  'hold_at', 'sum')
-- A field is read only if it is a finite number within bounds: a hash
-- someone wrote garbage into (nan, inf, a time in the future) is repaired,
-- not followed.
local function field(i, lo, hi)
  local x = tonumber(f[i])
  if x and x == x and x >= lo and x <= hi then
    return x
  end
  return nil
end
local FAR = 1e18
local rate, max, dec = field(1, 1e-12, 1e9), field(2, 1e-12, 1e9), field(3, 0, now)
local born = field(6, 0, now) or now
local ceil, ceil_until = field(7, 1e-12, 1e9), field(8, 0, FAR)
-- A first decrease waiting for every worker's report (the rate before, 0: none).
local hold, hold_at = field(9, 0, 1e9), field(10, born, now)
if not hold_at then
  hold = nil
end
-- Every send reported since the pace began.
local sum = (field(11, 0, FAR) or 0) + tonumber(ARGV[1])
local lag = tonumber(ARGV[14])
local minr, maxr = tonumber(ARGV[7]), tonumber(ARGV[8])
-- The fleet's time line: no grant starts more than three lags ahead, nor
-- runs longer than half a lag or one slot at the lowest rate, so a time
-- line further ahead than that is garbage (and would wedge the pace).
local tat = field(4, 0, now + 5 * lag + 1000000 / minr) or now
local function clamp(r)
  return math.min(math.max(r, minr), maxr)
end

-- What the fleet sends (see SLICE): slice `win` is the newest counted;
-- slices gone since are emptied for reuse.
local win = math.floor((now - born) / SLICE)
-- (A newest slice ahead of now: Redis's clock stepped back; count on in
-- the current slice rather than forget the window.)
local last = field(5, 0, FAR)
if last then
  last = math.min(math.floor(last), win)
end
local counts = redis.call('HMGET', KEYS[1], 's0', 's1', 's2', 's3', 's4', 's5', 's6', 's7')
for i = 1, SLICES do
  local x = tonumber(counts[i])
  counts[i] = (last and win - last < SLICES and x and x == x and x >= 0 and x <= FAR) and x or 0
end
if last then
  for j = last + 1, math.min(win, last + SLICES) do
    counts[j % SLICES + 1] = 0
  end
end
counts[win % SLICES + 1] = counts[win % SLICES + 1] + tonumber(ARGV[1])
local sent = 0
for i = 1, SLICES do
  sent = sent + counts[i]
end
local oldest = born + math.max(0, win - SLICES + 1) * SLICE
local measured = sent / (math.max(100000, now - oldest) / SECOND)

local initial = tonumber(ARGV[9])
local seed = tonumber(ARGV[15])
if not rate and seed > 0 then
  -- Redis lost the pace (a restart, an expiry) while the processes still
  -- pace: the reporting process's rate carries on.
  rate, max = clamp(seed), clamp(seed)
elseif not rate and initial > 0 then
  rate, max = clamp(initial), clamp(initial)
end
local decreased = false
local function decrease(before, sending)
  if before and before > 0 then
    sending = math.min(before, math.max(measured, minr))
  end
  max = math.max(sending, minr)
  dec, decreased = now, true
  rate = clamp(max * BETA)
end
if hold and now - born >= lag then
  -- Every worker has reported what it sent since the pace began: the
  -- fleet's rate until the refusal (each worker went on for about half a
  -- refresh, a quarter of the lag, before it heard of the hold).
  decrease(hold, sum / math.max(0.1, (hold_at - born + lag / 4) / SECOND))
  hold, hold_at = nil, nil
elseif ARGV[3] == '1' and not hold and not (rate and dec and now - dec < tonumber(ARGV[10]) * 1000) then
  -- Refused: the calls sent at the old rate say nothing new until
  -- min_decrease_interval has passed.
  if now - born < lag then
    -- Too soon to know what the fleet sends (the other workers have not
    -- reported yet): hold at the lowest rate until they have.
    hold, hold_at = rate or 0, now
    rate, max = minr, max or minr
  else
    decrease(rate, measured)
  end
end
local limit = tonumber(ARGV[4])
if limit > 0 then
  limit = clamp(limit)
  ceil, ceil_until = limit, now + tonumber(ARGV[5]) * 1000
  local sending = rate or measured
  if limit < sending then
    max, dec, decreased = clamp(sending), now, true
    rate = limit
  end
end
if rate and dec and not decreased and tonumber(ARGV[2]) > 0 then
  local k = (max * (1 - BETA) / C) ^ (1 / 3)
  local t = (now - dec) / 1000000
  local grown = math.min(C * (t - k) ^ 3 + max, 2 * math.max(measured, minr))
  if ceil and now < ceil_until then
    grown = math.min(grown, ceil)
  end
  rate = clamp(grown)
end
if ceil and now >= ceil_until then
  ceil, ceil_until = nil, nil
end

local wait, granted = 0, 0
-- At most a refresh (half a lag) of the fleet's rate to one process at once.
local wanted = tonumber(ARGV[6])
if rate then
  wanted = math.min(wanted, math.max(1, math.ceil(rate * lag / 2000000)))
end
-- (Nothing while a first decrease waits for the reports: its rate is a stopgap.)
if rate and wanted > 0 and not hold then
  local interval = 1000000 / rate
  local tolerance = interval * (tonumber(ARGV[11]) - 1)
  tat = math.max(tat, now)
  local start = math.max(0, tat - tolerance - now)
  if start <= tonumber(ARGV[12]) then
    wait, granted = start, wanted
    tat = tat + wanted * interval
  end
end

local fields = {'tat', string.format('%d', tat), 'win', string.format('%d', win), 'born', string.format('%d', born)}
for i = 1, SLICES do
  fields[#fields + 1] = 's' .. (i - 1)
  fields[#fields + 1] = string.format('%d', counts[i])
end
if rate then
  for _, v in ipairs({'rate', string.format('%.17g', rate), 'max', string.format('%.17g', max)}) do
    fields[#fields + 1] = v
  end
end
fields[#fields + 1] = 'sum'
fields[#fields + 1] = string.format('%d', sum)
if hold then
  for _, v in ipairs({'hold', string.format('%.17g', hold), 'hold_at', string.format('%d', hold_at)}) do
    fields[#fields + 1] = v
  end
else
  redis.call('HDEL', KEYS[1], 'hold', 'hold_at')
end
if dec then
  fields[#fields + 1] = 'dec'
  fields[#fields + 1] = string.format('%d', dec)
end
if ceil then
  for _, v in ipairs({'ceil', string.format('%.17g', ceil), 'ceil_until', string.format('%d', ceil_until)}) do
    fields[#fields + 1] = v
  end
else
  redis.call('HDEL', KEYS[1], 'ceil', 'ceil_until')
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[13])
local shown = '0'
if rate then
  shown = string.format('%.17g', rate)
end
return {shown, math.floor(wait), granted, math.floor(measured * 1000)}
