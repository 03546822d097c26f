-- backstop-redis: take up to ARGV[1] tokens from the fleet's retry budget.
-- KEYS[1]  the bucket (a hash: tokens; at, the ms of the last refill; out,
--          tokens leased to workers and not yet reported spent or returned;
--          out_at, the ms of the last lease taken)
-- ARGV[1]  tokens asked for (a lease: several retries' worth)
-- ARGV[2]  the bucket's capacity (a new or expired bucket starts full)
-- ARGV[3]  the key's time to live, ms (an abandoned fleet leaves nothing)
-- ARGV[4]  the smallest grant worth having; less is 0
-- ARGV[5]  tokens added per second by time (0: none), on Redis's clock
-- ARGV[6]  tokens this worker spent from its lease since it last said so,
--          less those refunded to it (may be negative)
-- ARGV[7]  tokens the bucket keeps whatever is asked (a worker that is not
--          retrying keeps one retry's worth only while half the bucket is
--          there; 0 for a worker that is retrying)
-- ARGV[8]  after how many ms without a lease taken the leases out are
--          forgotten (workers give idle leases back; what is still out
--          then was held by workers that died)
-- Returns {tokens granted, whole tokens left in the bucket}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local asked = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local rate = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'out', 'out_at')
local held = tonumber(state[1] or capacity)
local at = tonumber(state[2] or now)
local out = tonumber(state[3] or 0)
if now - tonumber(state[4] or now) > tonumber(ARGV[8]) then
  out = 0
end
out = math.min(capacity, math.max(0, out - tonumber(ARGV[6])))
if rate > 0 and now > at then
  -- Time refills what is neither in the bucket nor out on lease.
  held = math.max(held, math.min(capacity - out, held + (now - at) * rate / 1000))
end
local grant = math.min(asked, math.floor(held - tonumber(ARGV[7])))
if grant < tonumber(ARGV[4]) then
  grant = 0
end
redis.call('HSET', KEYS[1], 'tokens', tostring(held - grant), 'at', now, 'out', out + grant, 'out_at', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {grant, math.floor(held - grant)}
