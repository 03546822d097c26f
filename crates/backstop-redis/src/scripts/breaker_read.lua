-- backstop-redis: read a fleet breaker's state, on Redis's clock.
-- KEYS[1]  the breaker (a hash: state 0 closed, 1 open, 3 isolated; until,
--          the ms the open period ends; gen, one more at every change)
-- KEYS[2]  the probe lease (a string: the token of the process probing)
-- Returns {state, ms left of the open period, gen, 1 if a probe is out},
-- with state -1 when Redis holds no state for the breaker (never written,
-- expired, or lost in a restart): the caller decides what that means.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'state', 'until', 'gen')
local left = math.max(0, tonumber(s[2] or now) - now)
local probing = redis.call('EXISTS', KEYS[2])
if not s[1] then
  return {-1, 0, 0, probing}
end
return {tonumber(s[1]), left, tonumber(s[3] or 0), probing}
