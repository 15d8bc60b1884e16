"""Lua scripts of the Redis queue: every state change is one atomic script.

Key layout (``P`` is the prefix, ``qakeapi`` by default):

* ``P:t:<id>`` — hash per task: ``s`` (the record's fixed part as JSON: name, args, kwargs,
  options), and the changing fields ``status``, ``attempts``, ``started_at``,
  ``finished_at``, ``run_at``, ``worker_id``, ``lease``, ``cancel_reason``,
  ``cancel_requested``, ``result``, ``error``, ``context``, ``logs``; plus what the scripts
  need: ``score`` (ready order), ``due``, ``waiting`` (unfinished parents), ``mr``
  (max retries), ``uk`` (unique key), ``parents`` (space separated).
* ``P:ready`` (zset, score = -priority * 1e10 + due; member ``<15-digit enqueue seq>|<id>``
  so equal scores keep enqueue order) and ``P:readytime`` (due, member id) — claimable;
  ``P:scheduled`` (zset, run_at) — delayed or retrying; ``P:running`` (zset, lease expiry);
  ``P:done`` (zset, finished_at); ``P:all`` (zset, created_at) — for listing.
* ``P:children:<id>`` (set) — dependants; ``P:unique`` (hash key -> id); ``P:counts``
  (hash status -> count, kept by every script so ``stats`` reads one key);
  ``P:workers`` (hash id -> JSON). Wake-ups: pub/sub channel ``P:events``.

All numbers cross into Lua as strings, so no timestamp loses precision.
"""

from __future__ import annotations

__all__ = [
    "CANCEL",
    "CLAIM",
    "DELETE_PENDING",
    "ENQUEUE",
    "FINISH",
    "PURGE",
    "RECLAIM",
    "RENEW",
    "REQUEUE",
    "SAVE_PROGRESS",
]

PRELUDE = """
local P = ARGV[1]
local function tkey(id) return P .. ':t:' .. id end
local function count(status, delta)
  if status then redis.call('HINCRBY', P .. ':counts', status, delta) end
end
local function make_ready(id)
  local h = redis.call('HMGET', tkey(id), 'score', 'due', 'rm')
  redis.call('ZADD', P .. ':ready', h[1], h[3])
  redis.call('ZADD', P .. ':readytime', h[2], id)
end
local function schedule(id, now)
  local run_at = redis.call('HGET', tkey(id), 'run_at')
  if run_at and run_at ~= '' and tonumber(run_at) > tonumber(now) then
    redis.call('ZADD', P .. ':scheduled', run_at, id)
  else
    make_ready(id)
  end
end
local function unready(id)
  redis.call('ZREM', P .. ':ready', redis.call('HGET', tkey(id), 'rm'))
  redis.call('ZREM', P .. ':readytime', id)
  redis.call('ZREM', P .. ':scheduled', id)
end
local function end_task(id, status, now, reason)
  local key = tkey(id)
  count(redis.call('HGET', key, 'status'), -1)
  count(status, 1)
  redis.call('HSET', key, 'status', status, 'finished_at', now, 'worker_id', '', 'lease', '')
  if reason then
    local old = redis.call('HGET', key, 'cancel_reason')
    if not old or old == '' then redis.call('HSET', key, 'cancel_reason', reason) end
  end
  redis.call('ZREM', P .. ':running', id)
  unready(id)
  redis.call('ZADD', P .. ':done', now, id)
  local uk = redis.call('HGET', key, 'uk')
  if uk and uk ~= '' and redis.call('HGET', P .. ':unique', uk) == id then
    redis.call('HDEL', P .. ':unique', uk)
  end
end
local function cascade(root, reason, now)
  local queue = {root}
  local i = 1
  while i <= #queue do
    for _, child in ipairs(redis.call('SMEMBERS', P .. ':children:' .. queue[i])) do
      local st = redis.call('HGET', tkey(child), 'status')
      if st == 'pending' or st == 'running' then
        end_task(child, 'cancelled', now, reason)
        table.insert(queue, child)
      end
    end
    i = i + 1
  end
end
local function after_end(id, status, now)
  local released = 0
  if status == 'succeeded' then
    for _, child in ipairs(redis.call('SMEMBERS', P .. ':children:' .. id)) do
      local left = redis.call('HINCRBY', tkey(child), 'waiting', -1)
      if left <= 0 and redis.call('HGET', tkey(child), 'status') == 'pending' then
        schedule(child, now)
        released = released + 1
      end
    end
  else
    local verb = 'failed'
    if status == 'cancelled' then verb = 'was cancelled' end
    cascade(id, 'parent ' .. id .. ' ' .. verb, now)
  end
  return released
end
"""

# ARGV: prefix, now, records JSON (list of {id, s, score, due, run_at, uk, parents, created})
ENQUEUE = PRELUDE + """
local now = ARGV[2]
local records = cjson.decode(ARGV[3])
local seen = {}
for _, r in ipairs(records) do
  for _, parent in ipairs(r.parents) do
    if not seen[parent] and redis.call('EXISTS', tkey(parent)) == 0 then
      return {'missing', parent, r.id}
    end
  end
  seen[r.id] = true
end
local out = {}
for _, r in ipairs(records) do
  local existing = false
  if r.uk ~= '' then
    existing = redis.call('HGET', P .. ':unique', r.uk)
  end
  if existing then
    table.insert(out, 'dup:' .. existing)
  else
    local key = tkey(r.id)
    local waiting = 0
    local dead = false
    local dead_status = ''
    for _, parent in ipairs(r.parents) do
      redis.call('SADD', P .. ':children:' .. parent, r.id)
      local st = redis.call('HGET', tkey(parent), 'status')
      if st == 'failed' or st == 'cancelled' then
        dead = parent
        dead_status = st
      elseif st ~= 'succeeded' then
        waiting = waiting + 1
      end
    end
    local seq = redis.call('INCR', P .. ':seq')
    local rm = string.format('%015d', seq) .. '|' .. r.id
    redis.call('HSET', key, 's', r.s, 'status', 'pending', 'attempts', '0', 'score', r.score,
      'rm', rm,
      'due', r.due, 'run_at', r.run_at, 'waiting', waiting, 'mr', r.mr, 'uk', r.uk,
      'parents', table.concat(r.parents, ' '), 'cancel_requested', '0')
    redis.call('ZADD', P .. ':all', r.created, r.id)
    count('pending', 1)
    if r.uk ~= '' then redis.call('HSET', P .. ':unique', r.uk, r.id) end
    if dead then
      local verb = 'failed'
      if dead_status == 'cancelled' then verb = 'was cancelled' end
      end_task(r.id, 'cancelled', now, 'parent ' .. dead .. ' ' .. verb)
      table.insert(out, 'cancelled')
    else
      if waiting == 0 then schedule(r.id, now) end
      table.insert(out, 'ok')
    end
  end
end
redis.call('PUBLISH', P .. ':events', 'w')
return out
"""

# ARGV: prefix, worker, limit, now, lease expiry -> flat list: id, n, field, value, ...
CLAIM = PRELUDE + """
local worker, limit, now, lease = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local due = redis.call('ZRANGEBYSCORE', P .. ':scheduled', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', P .. ':scheduled', id)
  if redis.call('HGET', tkey(id), 'status') == 'pending' then make_ready(id) end
end
local out = {}
local claimed = 0
while claimed < limit do
  local popped = redis.call('ZPOPMIN', P .. ':ready', limit - claimed)
  if #popped == 0 then break end
  for i = 1, #popped, 2 do
    local id = string.sub(popped[i], 17)
    redis.call('ZREM', P .. ':readytime', id)
    local key = tkey(id)
    if redis.call('HGET', key, 'status') == 'pending' then
      redis.call('HINCRBY', key, 'attempts', 1)
      redis.call('HSET', key, 'status', 'running', 'started_at', now, 'worker_id', worker,
        'lease', lease)
      redis.call('ZADD', P .. ':running', lease, id)
      count('pending', -1)
      count('running', 1)
      local fields = redis.call('HGETALL', key)
      table.insert(out, id)
      table.insert(out, #fields)
      for _, v in ipairs(fields) do table.insert(out, v) end
      claimed = claimed + 1
    end
  end
end
return out
"""

# ARGV: prefix, worker, lease expiry, ids... -> {lost..., '|', cancel_requested...}
RENEW = PRELUDE + """
local worker, lease = ARGV[2], ARGV[3]
local lost, cancel = {}, {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local h = redis.call('HMGET', tkey(id), 'status', 'worker_id', 'cancel_requested')
  if h[1] == 'running' and h[2] == worker then
    redis.call('HSET', tkey(id), 'lease', lease)
    redis.call('ZADD', P .. ':running', 'XX', lease, id)
    if h[3] == '1' then table.insert(cancel, id) end
  else
    table.insert(lost, id)
  end
end
table.insert(lost, '|')
for _, id in ipairs(cancel) do table.insert(lost, id) end
return lost
"""

# ARGV: prefix, worker, id, context JSON, logs JSON
SAVE_PROGRESS = PRELUDE + """
local h = redis.call('HMGET', tkey(ARGV[3]), 'status', 'worker_id')
if h[1] == 'running' and h[2] == ARGV[2] then
  redis.call('HSET', tkey(ARGV[3]), 'context', ARGV[4], 'logs', ARGV[5])
end
return 0
"""

# ARGV: prefix, worker, now, outcomes JSON (list of {id, status, result, error, run_at,
#       context, logs, reason}; '' = none) -> accepted ids
FINISH = PRELUDE + """
local worker, now = ARGV[2], ARGV[3]
local outcomes = cjson.decode(ARGV[4])
local accepted = {}
local wake = false
for _, o in ipairs(outcomes) do
  local key = tkey(o.id)
  local h = redis.call('HMGET', key, 'status', 'worker_id')
  if h[1] == 'running' and h[2] == worker then
    table.insert(accepted, o.id)
    if o.context ~= '' then redis.call('HSET', key, 'context', o.context) end
    if o.logs ~= '' then redis.call('HSET', key, 'logs', o.logs) end
    redis.call('HSET', key, 'error', o.error)
    if o.status == 'pending' then
      redis.call('ZREM', P .. ':running', o.id)
      redis.call('HSET', key, 'status', 'pending', 'worker_id', '', 'lease', '', 'run_at',
        o.run_at)
      if o.run_at ~= '' then redis.call('HSET', key, 'due', o.run_at) end
      count('running', -1)
      count('pending', 1)
      schedule(o.id, now)
      wake = true
    else
      redis.call('HSET', key, 'result', o.result)
      local reason = false
      if o.status == 'cancelled' then
        reason = o.reason
        if reason == '' then reason = 'cancelled' end
      end
      end_task(o.id, o.status, now, reason)
      if after_end(o.id, o.status, now) > 0 then wake = true end
    end
  end
end
if wake then redis.call('PUBLISH', P .. ':events', 'w') end
return accepted
"""

# ARGV: prefix, now, error JSON -> reclaimed ids
RECLAIM = PRELUDE + """
local now, err = ARGV[2], ARGV[3]
local expired = redis.call('ZRANGEBYSCORE', P .. ':running', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  local key = tkey(id)
  local h = redis.call('HMGET', key, 'cancel_requested', 'attempts', 'mr')
  redis.call('HSET', key, 'error', err)
  if h[1] == '1' then
    end_task(id, 'cancelled', now, 'cancelled')
    after_end(id, 'cancelled', now)
  elseif tonumber(h[2]) <= tonumber(h[3]) then
    redis.call('ZREM', P .. ':running', id)
    redis.call('HSET', key, 'status', 'pending', 'worker_id', '', 'lease', '', 'run_at', '',
      'due', now)
    count('running', -1)
    count('pending', 1)
    schedule(id, now)
  else
    end_task(id, 'failed', now, false)
    after_end(id, 'failed', now)
  end
end
if #expired > 0 then redis.call('PUBLISH', P .. ':events', 'w') end
return expired
"""

# ARGV: prefix, id, reason, now -> status after ('' if missing)
CANCEL = PRELUDE + """
local id, reason, now = ARGV[2], ARGV[3], ARGV[4]
local key = tkey(id)
local status = redis.call('HGET', key, 'status')
if not status then return '' end
if status == 'pending' then
  end_task(id, 'cancelled', now, reason)
  after_end(id, 'cancelled', now)
  return 'cancelled'
elseif status == 'running' then
  redis.call('HSET', key, 'cancel_requested', '1', 'cancel_reason', reason)
  redis.call('PUBLISH', P .. ':events', 'c:' .. id)
end
return status
"""

# ARGV: prefix, id, now -> '' missing, 'bad:<status>', or 'ok'
REQUEUE = PRELUDE + """
local id, now = ARGV[2], ARGV[3]
local key = tkey(id)
local status = redis.call('HGET', key, 'status')
if not status then return '' end
if status ~= 'failed' and status ~= 'cancelled' then return 'bad:' .. status end
local waiting = 0
local parents = redis.call('HGET', key, 'parents')
for parent in string.gmatch(parents or '', '%S+') do
  if redis.call('HGET', tkey(parent), 'status') ~= 'succeeded' then waiting = waiting + 1 end
end
redis.call('HSET', key, 'status', 'pending', 'attempts', '0', 'error', '', 'result', '',
  'cancel_reason', '', 'cancel_requested', '0', 'finished_at', '', 'run_at', '', 'due', now,
  'waiting', waiting)
redis.call('ZREM', P .. ':done', id)
count(status, -1)
count('pending', 1)
if waiting == 0 then schedule(id, now) end
redis.call('PUBLISH', P .. ':events', 'w')
return 'ok'
"""

# ARGV: prefix, max score ('+inf', or '(<finished_before>'), statuses... -> number deleted
PURGE = PRELUDE + """
local before = ARGV[2]
local wanted = {}
for i = 3, #ARGV do wanted[ARGV[i]] = true end
local deleted = 0
local ids = redis.call('ZRANGEBYSCORE', P .. ':done', '-inf', before)
for _, id in ipairs(ids) do
  local status = redis.call('HGET', tkey(id), 'status')
  if not status then
    redis.call('ZREM', P .. ':done', id)
    redis.call('ZREM', P .. ':all', id)
  elseif wanted[status] then
    redis.call('DEL', tkey(id), P .. ':children:' .. id)
    redis.call('ZREM', P .. ':done', id)
    redis.call('ZREM', P .. ':all', id)
    count(status, -1)
    deleted = deleted + 1
  end
end
return deleted
"""

# Every pending task is ready, scheduled, or (waiting on parents) a descendant of a ready,
# scheduled or running task: walk those to find them all without scanning P:all.
DELETE_PENDING = PRELUDE + """
local found, queue = {}, {}
local function visit(id)
  if not found[id] then
    found[id] = true
    queue[#queue + 1] = id
  end
end
for _, member in ipairs(redis.call('ZRANGE', P .. ':ready', 0, -1)) do
  visit(string.match(member, '|(.*)$'))
end
for _, id in ipairs(redis.call('ZRANGE', P .. ':scheduled', 0, -1)) do visit(id) end
for _, id in ipairs(redis.call('ZRANGE', P .. ':running', 0, -1)) do visit(id) end
local i = 1
while i <= #queue do
  for _, child in ipairs(redis.call('SMEMBERS', P .. ':children:' .. queue[i])) do
    visit(child)
  end
  i = i + 1
end
local deleted = 0
for _, id in ipairs(queue) do
  local key = tkey(id)
  if redis.call('HGET', key, 'status') == 'pending' then
    unready(id)
    local h = redis.call('HMGET', key, 'parents', 'uk')
    for parent in string.gmatch(h[1] or '', '%S+') do
      redis.call('SREM', P .. ':children:' .. parent, id)
    end
    if h[2] and h[2] ~= '' and redis.call('HGET', P .. ':unique', h[2]) == id then
      redis.call('HDEL', P .. ':unique', h[2])
    end
    redis.call('DEL', key, P .. ':children:' .. id)
    redis.call('ZREM', P .. ':all', id)
    count('pending', -1)
    deleted = deleted + 1
  end
end
return deleted
"""
