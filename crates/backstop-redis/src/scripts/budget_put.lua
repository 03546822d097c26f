-- backstop-redis: give tokens to the fleet's retry budget: a lease's unused
-- tokens (returned), and what successes refilled (refills), batched by each
-- worker. Refills fill only the room that neither the bucket nor the
-- leases out hold, so the fleet never has more than one bucket of tokens.
-- KEYS[1]  the bucket (a hash: tokens, at, out, out_at)
-- ARGV[1]  lease tokens returned
-- ARGV[2]  the bucket's capacity (never exceeded)
-- ARGV[3]  the key's time to live, ms
-- ARGV[4]  tokens refilled by successes
-- ARGV[5]  tokens this worker spent from its lease since it last said so,
--          less those refunded to it (may be negative)
-- Returns {whole tokens the bucket and the leases out hold together,
-- whole tokens in the bucket}.
local capacity = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'out')
local held = tonumber(state[1] or capacity)
local back = tonumber(ARGV[1])
local out = math.min(capacity, math.max(0, tonumber(state[2] or 0) - tonumber(ARGV[5]) - back))
held = math.min(capacity, held + back)
local room = math.max(0, capacity - held - out)
held = held + math.min(room, tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'tokens', tostring(held), 'out', out)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {math.floor(held + out), math.floor(held)}
