// GCRA in one Lua script (the arithmetic of domain/rate-limit.ts gcraStep), so concurrent
// requests on every replica see one TAT per token. Time is the Redis server's own (TIME), so
// the replicas' clocks never matter: only the primary that owns the key's slot keeps time.
// Microseconds, as integers below 2^53, so Lua's doubles keep them exact; the TAT is written
// with %.0f because tostring() would print a large number in exponent form and lose digits.
// replicate_commands: Redis < 5 must be told to replicate effects once a script reads TIME.
export const GCRA_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local nextTat = tat + interval
local allowAt = nextTat - tolerance
if now < allowAt then return {0, math.ceil(allowAt - now)} end
local ttl = string.format('%.0f', math.ceil((nextTat - now) / 1000) + 1000)
redis.call('SET', KEYS[1], string.format('%.0f', nextTat), 'PX', ttl)
return {1, 0}`;
