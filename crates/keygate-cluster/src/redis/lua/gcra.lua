-- One GCRA step, atomically, on Redis's clock (µs). KEYS[1]: the TAT.
-- ARGV[1]: emission interval µs; ARGV[2]: tolerance µs (interval x burst).
-- Returns {admitted 0|1, TAT - now before this request (µs, >= 0)}.
-- Numbers are doubles: exact for integers below 2^53, and µs since 1970
-- are ~2^51; the TAT is written with %.0f (tostring keeps 14 digits).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local ahead = tat - now
if ahead + interval > tolerance then
  return {0, ahead}
end
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval),
  'PX', math.ceil((ahead + interval) / 1000) + 1000)
return {1, ahead}
