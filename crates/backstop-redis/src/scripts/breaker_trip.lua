-- backstop-redis: a process's breaker tripped: open the fleet's circuit,
-- unless it is open (or isolated) already.
-- KEYS[1]  the breaker; KEYS[2] the probe lease
-- ARGV[1]  the open period, ms; ARGV[2] the key's time to live, ms
-- Returns {state, ms left of the open period, gen, 1 if this call opened it}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'state', 'until', 'gen')
local state, gen = tonumber(s[1] or 0), tonumber(s[3] or 0)
if state ~= 0 then
  return {state, math.max(0, tonumber(s[2] or now) - now), gen, 0}
end
local period = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'state', 1, 'until', now + period, 'gen', gen + 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return {1, period, gen + 1, 1}
