-- backstop-redis: read a fleet breaker's state, on Redis's clock.
-- KEYS[1]  the breaker (a hash: state 0 closed, 1 open, 3 isolated; until,
--          the ms the open period ends; gen, one more at every change)
-- KEYS[2]  the probe lease (a string: the token of the process probing)
-- Returns {state, ms left of the open period, gen, 1 if a probe is out}.
-- A missing key is a closed breaker.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'state', 'until', 'gen')
local left = math.max(0, tonumber(s[2] or now) - now)
local probing = redis.call('EXISTS', KEYS[2])
return {tonumber(s[1] or 0), left, tonumber(s[3] or 0), probing}
