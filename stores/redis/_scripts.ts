// Lua scripts of RedisStore's atomic batch updates (standalone servers: a script's keys must live
// on one node, so a cluster runs them one key at a time). Every key is checked before any is
// written, so a batch that fails a check writes nothing.

/**
 * `incrementMany`: KEYS = keys, ARGV = [ttlMs or 0, amount…]. Fails with `NOTNUMBER <key>` when a
 * key holds something other than a number; else adds with INCRBYFLOAT (which keeps a key's TTL;
 * with ttlMs > 0 the key then gets that TTL). Returns the number of keys.
 */
export const INCREMENT_LUA = `
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v and not tonumber(v) then return redis.error_reply('NOTNUMBER ' .. k) end
end
local ttl = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  redis.call('INCRBYFLOAT', k, ARGV[i + 1])
  if ttl > 0 then redis.call('PEXPIRE', k, ttl) end
end
return #KEYS
`;

/**
 * `mergeMany` compare-and-set: KEYS = keys, ARGV = [ttlMs or 0, (sha1 of the value read, or ""
 * when it was absent, new value)…]. Writes each key whose value is still the one read and returns
 * the 1-based indexes of the others (changed meanwhile: the caller reads them again).
 */
export const MERGE_LUA = `
local ttl = tonumber(ARGV[1])
local same = {}
local failed = {}
for i, k in ipairs(KEYS) do
  local cur = redis.call('GET', k)
  local expect = ARGV[2 * i]
  if cur then same[i] = redis.sha1hex(cur) == expect else same[i] = expect == '' end
end
for i, k in ipairs(KEYS) do
  if same[i] then
    if ttl > 0 then redis.call('SET', k, ARGV[2 * i + 1], 'PX', ttl)
    else redis.call('SET', k, ARGV[2 * i + 1]) end
  else
    failed[#failed + 1] = i
  end
end
return failed
`;
