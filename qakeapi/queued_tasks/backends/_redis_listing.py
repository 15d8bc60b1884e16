"""Reading the Redis queue's task list a page at a time (see :mod:`._paging`).

The scripts keep one sorted set per listing, scored by ``created_at`` (ties in id order):
``P:all`` (every task), ``P:st:<status>``, ``P:nm:<name>`` and ``P:ns:<status>:<name>``
(see :mod:`._redis_scripts`). A page is a rank range next to the cursor's position, found
with two ``ZCOUNT`` and a binary search among equal scores: O(log N) however deep the page.
Index entries are checked against the task's hash when read, so an entry left stale by
someone writing the storage past the queue is skipped, never shown under the wrong filter.
A queue stored before these indexes existed gets them built once, on connect
(:data:`BUILD_INDEXES`).
"""

from __future__ import annotations

__all__ = ["BUILD_INDEXES", "LAYOUT", "PAGE", "index_key"]

LAYOUT = "2"
"""Value of ``P:layout`` once every task is in the listing indexes."""


def index_key(prefix: str, status: str | None, name: str | None) -> str:
    if status and name:
        return f"{prefix}:ns:{status}:{name}"
    if status:
        return f"{prefix}:st:{status}"
    if name:
        return f"{prefix}:nm:{name}"
    return f"{prefix}:all"


# ARGV: prefix, index key, 'top' | 'older' | 'newer', count, score, id
#       -> flat {id, score, hash as a JSON object ('' if gone), ...} nearest the position
#       first ('top': newest first). One JSON string per task instead of every field as its
#       own reply keeps the client's parsing cheap.
PAGE = """
local P, key, dir, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local function packed(entries)
  local out = {}
  for i = 1, #entries, 2 do
    local h = redis.call('HGETALL', P .. ':t:' .. entries[i])
    local json = ''
    if #h > 0 then
      local t = {}
      for j = 1, #h, 2 do t[h[j]] = h[j + 1] end
      json = cjson.encode(t)
    end
    out[#out + 1] = entries[i]
    out[#out + 1] = entries[i + 1]
    out[#out + 1] = json
  end
  return out
end
if dir == 'top' then
  return packed(redis.call('ZREVRANGE', key, 0, n - 1, 'WITHSCORES'))
end
local score, id = ARGV[5], ARGV[6]
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local lo = redis.call('ZCOUNT', key, '-inf', '(' .. score)
local last = lo + redis.call('ZCOUNT', key, score, score)
local hi = last
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  if before(redis.call('ZRANGE', key, mid, mid)[1], id) then lo = mid + 1 else hi = mid end
end
if dir == 'older' then
  if lo == 0 then return {} end
  local out = redis.call('ZRANGE', key, math.max(0, lo - n), lo - 1, 'WITHSCORES')
  local rev = {}
  for i = #out - 1, 1, -2 do
    rev[#rev + 1] = out[i]
    rev[#rev + 1] = out[i + 1]
  end
  return packed(rev)
end
if lo < last and redis.call('ZRANGE', key, lo, lo)[1] == id then lo = lo + 1 end
return packed(redis.call('ZRANGE', key, lo, lo + n - 1, 'WITHSCORES'))
"""

# ARGV: prefix, first rank, count -> how many tasks of P:all it indexed (0: done)
BUILD_INDEXES = """
local P = ARGV[1]
local entries = redis.call('ZRANGE', P .. ':all', tonumber(ARGV[2]),
  tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1, 'WITHSCORES')
for i = 1, #entries, 2 do
  local id, created = entries[i], entries[i + 1]
  local key = P .. ':t:' .. id
  local h = redis.call('HMGET', key, 'status', 'nm', 's')
  local nm = h[2]
  if not nm and h[3] then
    local ok, fixed = pcall(cjson.decode, h[3])
    if ok and type(fixed) == 'table' and type(fixed.name) == 'string' then
      nm = fixed.name
      redis.call('HSET', key, 'nm', nm)
    end
  end
  if nm then redis.call('ZADD', P .. ':nm:' .. nm, created, id) end
  if h[1] then
    redis.call('ZADD', P .. ':st:' .. h[1], created, id)
    if nm then redis.call('ZADD', P .. ':ns:' .. h[1] .. ':' .. nm, created, id) end
  end
end
return #entries / 2
"""
