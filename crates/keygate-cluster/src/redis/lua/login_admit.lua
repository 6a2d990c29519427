-- Admits a login attempt, atomically, on Redis's clock, and counts it as a
-- failure until told otherwise. KEYS[1]: the username's failures (hash:
-- count, last ms); KEYS[2]: the client's GCRA TAT (µs).
-- ARGV: free failures, base delay ms, max delay ms, forget after ms,
-- client interval µs, client tolerance µs.
-- Returns {1, now ms} (admitted) or {0, ms to wait}.
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
local free, base, max_delay, forget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local interval, tolerance = tonumber(ARGV[5]), tonumber(ARGV[6])
local tat = tonumber(redis.call('GET', KEYS[2])) or now_us
if tat < now_us then tat = now_us end
if tat + interval - now_us > tolerance then
  return {0, math.ceil((tat + interval - tolerance - now_us) / 1000)}
end
local count = tonumber(redis.call('HGET', KEYS[1], 'count')) or 0
local last = tonumber(redis.call('HGET', KEYS[1], 'last')) or now
local fresh = now - last < forget
if not fresh then count = 0 end
if count >= free then
  local delay = math.min(base * 2 ^ math.min(count - free, 40), max_delay)
  if now < last + delay then
    return {0, last + delay - now}
  end
end
redis.call('HSET', KEYS[1], 'count', count + 1, 'last', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], forget)
redis.call('SET', KEYS[2], string.format('%.0f', tat + interval),
  'PX', math.ceil((tat + interval - now_us) / 1000) + 1000)
return {1, now}
