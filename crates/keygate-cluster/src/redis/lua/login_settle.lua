-- How an admitted login attempt ended. KEYS[1]: the username's failures;
-- KEYS[2]: the client's GCRA TAT (µs). ARGV[1]: 's' succeeded (the
-- username starts afresh) or 'f' forgiven (one failure less); both give
-- the client's slot back. ARGV[2]: client interval µs.
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[1] == 's' then
  redis.call('DEL', KEYS[1])
else
  local count = tonumber(redis.call('HGET', KEYS[1], 'count'))
  if count and count > 0 then
    redis.call('HSET', KEYS[1], 'count', count - 1)
  end
end
local tat = tonumber(redis.call('GET', KEYS[2]))
if tat then
  local back = tat - tonumber(ARGV[2])
  if back <= now_us then
    redis.call('DEL', KEYS[2])
  else
    redis.call('SET', KEYS[2], string.format('%.0f', back),
      'PX', math.ceil((back - now_us) / 1000) + 1000)
  end
end
return 1
