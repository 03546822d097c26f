-- backstop-redis: the probing process's verdict closes or re-opens the
-- fleet's circuit; a verdict from a process whose lease is gone is ignored.
-- KEYS[1]  the breaker; KEYS[2] the probe lease
-- ARGV[1]  the token of the process; ARGV[2] 1 closes, 0 re-opens
-- ARGV[3]  the new open period, ms; ARGV[4] the key's time to live, ms
-- Returns 1 when the verdict was taken, 0 when ignored.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or 0) + 1
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'state', 0, 'until', 0, 'gen', gen)
else
  redis.call('HSET', KEYS[1], 'state', 1, 'until', now + tonumber(ARGV[3]), 'gen', gen)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('DEL', KEYS[2])
return 1
