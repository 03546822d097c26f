-- backstop-redis: give tokens to the fleet's retry budget: a lease's unused
-- tokens (returned), and what successes refilled (refills), batched by each
-- worker. Refills fill only the room that neither the bucket nor the
-- leases out hold, so the fleet never has more than one bucket of tokens.
-- KEYS[1]  the bucket (a hash: tokens, at)
-- KEYS[2]  the leases out (a hash: worker token -> "tokens out:last seen ms")
-- ARGV[1]  lease tokens returned
-- ARGV[2]  the bucket's capacity (never exceeded)
-- ARGV[3]  the keys' time to live, ms
-- ARGV[4]  tokens refilled by successes
-- ARGV[5]  tokens this worker spent from its lease since it last said so,
--          less those refunded to it (may be negative)
-- ARGV[6]  after how many ms unheard a worker's lease is forgotten
-- ARGV[7]  this worker's token
-- Returns {whole tokens the bucket and the leases out hold together,
-- whole tokens in the bucket}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local capacity = tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[1], 'tokens') or capacity)
local back = tonumber(ARGV[1])
local mine, others = leases_out(ARGV[7], tonumber(ARGV[6]), now)
mine = math.max(0, mine - tonumber(ARGV[5]) - back)
held = math.min(capacity, held + back)
local room = math.max(0, capacity - held - mine - others)
held = held + math.min(room, tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'tokens', tostring(held))
lease_set(ARGV[7], mine, now, tonumber(ARGV[6]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {math.floor(math.min(capacity, held + mine + others)), math.floor(held)}
