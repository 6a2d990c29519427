-- Gives one interval back: TAT = max(TAT - interval, now). KEYS[1]: the TAT.
-- ARGV[1]: emission interval µs.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local back = tat - tonumber(ARGV[1])
if back <= now then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], string.format('%.0f', back),
  'PX', math.ceil((back - now) / 1000) + 1000)
return 1
