-- backstop-redis: reserve the fleet's next send slot by GCRA, the generic
-- cell rate algorithm (ATM Forum TM 4.0; as redis-cell and many API
-- gateways use it). One value is kept: the theoretical arrival time (TAT)
-- of the next request. A request conforms when it is no earlier than
-- TAT - tolerance; reserving moves TAT on by one emission interval.
-- KEYS[1]  the TAT, in microseconds of the Redis server's clock
-- ARGV[1]  the emission interval, microseconds (1e6 / rate)
-- ARGV[2]  the burst tolerance, microseconds (interval * (burst - 1))
-- ARGV[3]  the longest wait a caller accepts, microseconds
-- ARGV[4]  the key's time to live, ms (at least the tolerance)
-- Returns the wait in microseconds before sending (0: now), or -1 when the
-- slot is further away than the longest wait (nothing is reserved then).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local wait = math.max(0, tat - tolerance - now)
if wait > tonumber(ARGV[3]) then
  return -1
end
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX', ARGV[4])
return wait
