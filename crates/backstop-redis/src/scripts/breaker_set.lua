-- backstop-redis: isolate or reset the fleet's circuit by hand (one
-- process's `isolate()` or `reset()`), whatever its state.
-- KEYS[1]  the breaker; KEYS[2] the probe lease
-- ARGV[1]  the state: 0 closed (reset), 3 isolated; ARGV[2] ttl, ms
-- Returns the new gen.
local gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or 0) + 1
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'until', 0, 'gen', gen)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return gen
