-- Records a signed request's nonce, atomically, on Redis's clock (ms).
-- KEYS[1]: the key's live nonces (sorted set: nonce hash -> expiry ms);
-- KEYS[2]: the nonce epoch; KEYS[3]: until when nonces may also be in SQL.
-- ARGV[1]: nonce hash; ARGV[2]: expiry ms; ARGV[3]: created ms;
-- ARGV[4]: the key's quota; ARGV[5]: this node's SQL-until (0: none).
-- Returns {verdict, detail, sql_until}: verdict 0 fresh, 1 replayed,
-- 2 over quota (detail: ms until room), 3 made before the epoch.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- The epoch is missing only in a Redis that never held nonces or lost
-- them: every signature made before now may have been seen already.
local epoch = tonumber(redis.call('GET', KEYS[2]))
if not epoch then
  epoch = now
  redis.call('SET', KEYS[2], string.format('%.0f', now))
end
local sql_until = tonumber(redis.call('GET', KEYS[3])) or 0
local mine = tonumber(ARGV[5])
if mine > sql_until and mine > now then
  sql_until = mine
  redis.call('SET', KEYS[3], string.format('%.0f', mine), 'PXAT', string.format('%.0f', mine))
end
if tonumber(ARGV[3]) < epoch then
  return {3, 0, sql_until}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {1, 0, sql_until}
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {2, math.max(tonumber(first[2]) - now, 1), sql_until}
end
local expires = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%.0f', expires), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', math.max(tonumber(last[2]), now + 1000)))
return {0, 0, sql_until}
