-- backstop-redis: take up to ARGV[1] tokens from the fleet's retry budget.
-- KEYS[1]  the bucket (a hash: tokens; at, the ms of the last refill)
-- KEYS[2]  the leases out (a hash: worker token -> "tokens out:last seen ms")
-- ARGV[1]  tokens asked for (a lease: several retries' worth; 0 only says
--          this worker is alive and settles what it spent)
-- ARGV[2]  the bucket's capacity (a new or expired bucket starts full)
-- ARGV[3]  the keys' time to live, ms (an abandoned fleet leaves nothing)
-- ARGV[4]  the smallest grant worth having; less is 0
-- ARGV[5]  tokens added per second by time (0: none), on Redis's clock
-- ARGV[6]  tokens this worker spent from its lease since it last said so,
--          less those refunded to it (may be negative)
-- ARGV[7]  tokens the bucket keeps whatever is asked (a floor)
-- ARGV[8]  after how many ms unheard a worker's lease is forgotten (it died;
--          living workers holding a lease say so more often than that)
-- ARGV[9]  this worker's token
-- Returns {tokens granted, whole tokens left in the bucket}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local capacity = tonumber(ARGV[2])
local rate = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local held = tonumber(state[1] or capacity)
local at = tonumber(state[2] or now)
-- The leases out: this worker's, settled; the others', unless forgotten.
local mine, others = leases_out(ARGV[9], tonumber(ARGV[8]), now)
mine = math.max(0, mine - tonumber(ARGV[6]))
if rate > 0 and now > at then
  -- Time refills what is neither in the bucket nor out on lease.
  held = math.max(held, math.min(capacity - mine - others, held + (now - at) * rate / 1000))
end
local grant = math.min(tonumber(ARGV[1]), math.floor(held - tonumber(ARGV[7])))
if grant < tonumber(ARGV[4]) then
  grant = 0
end
mine = mine + grant
redis.call('HSET', KEYS[1], 'tokens', tostring(held - grant), 'at', now)
lease_set(ARGV[9], mine, now, tonumber(ARGV[8]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {grant, math.floor(held - grant)}
