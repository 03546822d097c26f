-- backstop-redis: ask for the fleet's probe: granted (SET NX PX) to one
-- process at a time, only once the open period is over.
-- KEYS[1]  the breaker; KEYS[2] the probe lease
-- ARGV[1]  this process's token; ARGV[2] how long the lease lasts, ms
-- Returns 1 when this process holds the probe (again: the lease then runs
-- from now), 0 otherwise.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'state', 'until')
if tonumber(s[1] or 0) ~= 1 or now < tonumber(s[2] or now) then
  return 0
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
