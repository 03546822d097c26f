-- backstop-redis: take up to ARGV[1] tokens from the fleet's retry budget.
-- KEYS[1]  the bucket (a hash: tokens)
-- ARGV[1]  tokens asked for (a lease: several retries' worth)
-- ARGV[2]  the bucket's capacity (a new or expired bucket starts full)
-- ARGV[3]  the key's time to live, ms (an abandoned fleet leaves nothing)
-- ARGV[4]  the smallest grant worth having (one retry's cost); less is 0
-- Returns the tokens granted: min(asked, held), or 0 below the smallest grant.
local asked = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[1], 'tokens') or capacity)
local grant = math.min(asked, held)
if grant < tonumber(ARGV[4]) then
  grant = 0
end
redis.call('HSET', KEYS[1], 'tokens', held - grant)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return grant
