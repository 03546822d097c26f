-- backstop-redis: give tokens back to the fleet's retry budget (an unused
-- lease, refunds and success refills, batched by each worker).
-- KEYS[1]  the bucket (a hash: tokens, at)
-- ARGV[1]  tokens given back
-- ARGV[2]  the bucket's capacity (never exceeded)
-- ARGV[3]  the key's time to live, ms
-- Returns the whole tokens the bucket holds now.
local capacity = tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[1], 'tokens') or capacity)
local now = math.min(capacity, held + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'tokens', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return math.floor(now)
