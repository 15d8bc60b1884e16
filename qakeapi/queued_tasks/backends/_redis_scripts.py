"""Lua scripts of the Redis queue: every state change is one atomic script.

Key layout (``P`` is the prefix, ``qakeapi`` by default):

* ``P:t:<id>`` — hash per task: ``s`` (the record's fixed part as JSON: name, args, kwargs,
  options), and the changing fields ``status``, ``attempts``, ``started_at``,
  ``finished_at``, ``run_at``, ``worker_id``, ``lease``, ``cancel_reason``,
  ``cancel_requested``, ``result``, ``error``, ``context``, ``logs``; plus what the scripts
  need: ``score`` (ready order), ``due``, ``waiting`` (unfinished parents), ``mr``
  (max retries), ``uk`` (unique key), ``parents`` (space separated), ``nm`` (the name, for
  the listing indexes).
* ``P:ready`` (zset, score = -priority * 1e10 + due; member ``<15-digit enqueue seq>|<id>``
  so equal scores keep enqueue order) and ``P:readytime`` (due, member id) — claimable;
  ``P:scheduled`` (zset, run_at) — delayed or retrying; ``P:running`` (zset, lease expiry);
  ``P:done`` (zset, finished_at); ``P:all`` (zset, created_at) — for listing, with
  ``P:st:<status>``, ``P:nm:<name>`` and ``P:ns:<status>:<name>`` (zsets, created_at), moved
  with every change of state (``move`` in the prelude) so a page of any listing is a rank
  range (:mod:`._redis_listing`); ``P:layout`` says they were built for older tasks. ``due`` is
  when the task last became pending (enqueued, retried, reclaimed, requeued) or its
  ``run_at``: a retried task queues behind work that was due before it.
* ``P:children:<id>`` (set) — dependants; ``P:unique`` (hash key -> id); ``P:counts``
  (hash status -> count, kept by every script so ``stats`` reads one key);
  ``P:workers`` (hash id -> JSON). Wake-ups: pub/sub channel ``P:events``.
* ``P:fanout`` (list of JSON jobs ``{k: release|cancel|revive, t: task id, a: reason or
  root id, c: SSCAN cursor}``) — children still to release, cancel or revive. Every
  script that ends or requeues a task pushes its job and works through at most
  ``FANOUT_CHUNK`` children; ``FANOUT`` continues. Each step is idempotent per child.

Clock: ``ARGV[2]`` is ``''`` and the scripts read the server's ``TIME``, so leases, due
times and reclaims never depend on a client's clock. Times a client computed (a task's
``created_at``/``run_at``, a retry time, a purge limit) arrive as offsets from that
client's clock at the call and are re-based on the server's. The contract tests pass an
explicit ``now`` in ``ARGV[2]`` instead. Numbers go into Redis as Lua numbers (written
with 17 significant digits) and come back to Python as strings, so no timestamp loses
precision.
"""

from __future__ import annotations

from ._redis_prelude import PRELUDE

__all__ = [
    "CANCEL",
    "CLAIM",
    "DELETE_PENDING",
    "ENQUEUE",
    "FANOUT",
    "FINISH",
    "PEEK",
    "PURGE",
    "RECLAIM",
    "RENEW",
    "REQUEUE",
    "SAVE_PROGRESS",
]

# ARGV: prefix, now, records JSON (list of {id, name, s, priority, due, run, uk, mr, parents,
#       created, ctx, ar}; due and run are offsets from the client's clock, run '' = none,
#       ctx '' = empty context, ar '1' = auto_remove)
#       -> {server now, per record: 'ok', 'cancelled' or 'dup:<id>'}
#       or {'missing', parent, id}
ENQUEUE = PRELUDE + """
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
local out = {fmt(now)}
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
    local due = now + tonumber(r.due)
    local run_at = ''
    if r.run ~= '' then run_at = now + tonumber(r.run) end
    redis.call('HSET', key, 's', r.s, 'status', 'pending', 'attempts', '0',
      'score', -r.priority * 1e10 + due, 'rm', rm,
      'due', due, 'run_at', run_at, 'waiting', waiting, 'mr', r.mr, 'uk', r.uk,
      'parents', table.concat(r.parents, ' '), 'cancel_requested', '0', 'nm', r.name)
    if r.ctx ~= '' then redis.call('HSET', key, 'context', r.ctx) end
    if r.ar ~= '' then redis.call('HSET', key, 'ar', r.ar) end
    redis.call('ZADD', P .. ':all', r.created, r.id)
    redis.call('ZADD', P .. ':nm:' .. r.name, r.created, r.id)
    move(r.id, false, 'pending')
    if r.uk ~= '' then redis.call('HSET', P .. ':unique', r.uk, r.id) end
    if dead then
      end_task(r.id, 'cancelled', dead_reason(dead, dead_status))
      table.insert(out, 'cancelled')
    else
      if waiting == 0 then schedule(r.id) end
      table.insert(out, 'ok')
    end
  end
end
redis.call('PUBLISH', P .. ':events', 'w')
return out
"""

# ARGV: prefix, now, worker, limit, lease seconds -> flat list: id, n, field, value, ...
CLAIM = PRELUDE + """
local worker, limit = ARGV[3], tonumber(ARGV[4])
local lease = now + tonumber(ARGV[5])
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
    local status = redis.call('HGET', key, 'status')
    if status == 'pending' then
      local attempts = redis.call('HGET', key, 'attempts')
      if not attempts or string.match(attempts, '^%-?%d%d?%d?%d?%d?%d?%d?%d?%d?$') then
        redis.call('HINCRBY', key, 'attempts', 1)
      end
      redis.call('HSET', key, 'status', 'running', 'started_at', now, 'worker_id', worker,
        'lease', lease)
      redis.call('ZADD', P .. ':running', lease, id)
      move(id, 'pending', 'running')
      local fields = redis.call('HGETALL', key)
      table.insert(out, id)
      table.insert(out, #fields)
      for _, v in ipairs(fields) do table.insert(out, v) end
      claimed = claimed + 1
    elseif status and not STATUSES[status] then
      redis.call('HSET', key, 'status', 'pending', 'error', cjson.encode({type =
        'CorruptTaskError', message = 'corrupt row: task ' .. id ..
        ': its status is not a task status', traceback = '', timed_out = false}))
      end_task(id, 'failed', false)
      after_end(id, 'failed')
    end
  end
end
fanout_step(CHUNK)
return out
"""

# ARGV: prefix, now, worker, lease seconds, ids... -> {lost..., '|', cancel_requested...}
RENEW = PRELUDE + """
local worker = ARGV[3]
local lease = now + tonumber(ARGV[4])
local lost, cancel = {}, {}
for i = 5, #ARGV do
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

# ARGV: prefix, now, worker, id, context JSON, logs JSON
SAVE_PROGRESS = PRELUDE + """
local h = redis.call('HMGET', tkey(ARGV[4]), 'status', 'worker_id')
if h[1] == 'running' and h[2] == ARGV[3] then
  redis.call('HSET', tkey(ARGV[4]), 'context', ARGV[5], 'logs', ARGV[6])
end
return 0
"""

# ARGV: prefix, now, worker, outcomes JSON (list of {id, status, result, error, run,
#       context, logs, reason}; '' = none; run is an offset from the client's clock)
#       -> {fan-out left (0/1), accepted ids...}
FINISH = PRELUDE + """
local worker = ARGV[3]
local outcomes = cjson.decode(ARGV[4])
local out = {0}
local wake = false
for _, o in ipairs(outcomes) do
  local key = tkey(o.id)
  local h = redis.call('HMGET', key, 'status', 'worker_id')
  if h[1] == 'running' and h[2] == worker then
    table.insert(out, o.id)
    if o.context ~= '' then redis.call('HSET', key, 'context', o.context) end
    if o.logs ~= '' then redis.call('HSET', key, 'logs', o.logs) end
    redis.call('HSET', key, 'error', o.error)
    if o.status == 'pending' then
      local run_at = ''
      local due = now
      if o.run ~= '' then
        run_at = now + tonumber(o.run)
        due = run_at
      end
      redis.call('ZREM', P .. ':running', o.id)
      redis.call('HSET', key, 'status', 'pending', 'worker_id', '', 'lease', '', 'run_at',
        run_at)
      set_due(o.id, due)
      move(o.id, 'running', 'pending')
      schedule(o.id)
      wake = true
    else
      redis.call('HSET', key, 'result', o.result)
      local reason = false
      if o.status == 'cancelled' then
        reason = o.reason
        if reason == '' then reason = 'cancelled' end
      end
      end_task(o.id, o.status, reason)
      if o.status == 'succeeded' and redis.call('HGET', key, 'ar') == '1'
          and redis.call('EXISTS', P .. ':children:' .. o.id) == 0 then
        forget(o.id, 'succeeded')
        redis.call('DEL', key)
        redis.call('ZREM', P .. ':done', o.id)
      else
        after_end(o.id, o.status)
      end
    end
  end
end
if wake then redis.call('PUBLISH', P .. ':events', 'w') end
out[1] = fanout_step(CHUNK)
return out
"""

# ARGV: prefix, now, error JSON -> {fan-out left (0/1), reclaimed ids...}
RECLAIM = PRELUDE + """
local err = ARGV[3]
local expired = redis.call('ZRANGEBYSCORE', P .. ':running', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  local key = tkey(id)
  local h = redis.call('HMGET', key, 'cancel_requested', 'attempts', 'mr')
  redis.call('HSET', key, 'error', err)
  if h[1] == '1' then
    end_task(id, 'cancelled', 'cancelled')
    after_end(id, 'cancelled')
  elseif num(h[2]) <= (tonumber(h[3]) or -1) then
    redis.call('ZREM', P .. ':running', id)
    redis.call('HSET', key, 'status', 'pending', 'worker_id', '', 'lease', '', 'run_at', '')
    set_due(id, now)
    move(id, 'running', 'pending')
    schedule(id)
  else
    end_task(id, 'failed', false)
    after_end(id, 'failed')
  end
end
if #expired > 0 then redis.call('PUBLISH', P .. ':events', 'w') end
local out = {fanout_step(CHUNK)}
for _, id in ipairs(expired) do table.insert(out, id) end
return out
"""

# ARGV: prefix, now, id, reason -> {fan-out left (0/1), status after ('' if missing)}
CANCEL = PRELUDE + """
local id, reason = ARGV[3], ARGV[4]
local key = tkey(id)
local status = redis.call('HGET', key, 'status')
if not status then return {0, ''} end
if status == 'pending' then
  end_task(id, 'cancelled', reason)
  after_end(id, 'cancelled')
  return {fanout_step(CHUNK), 'cancelled'}
elseif status == 'running' then
  redis.call('HSET', key, 'cancel_requested', '1', 'cancel_reason', reason)
  redis.call('PUBLISH', P .. ':events', 'c:' .. id)
end
return {0, status}
"""

# ARGV: prefix, now, id -> {fan-out left (0/1), answer}; answer: '' missing, 'bad:<status>',
#       'missing:<parent>', 'dead:<status>:<parent>', 'unique:<key>:<holder>' or 'ok'
REQUEUE = PRELUDE + """
local id = ARGV[3]
local status = redis.call('HGET', tkey(id), 'status')
if not status then return {0, ''} end
if status ~= 'failed' and status ~= 'cancelled' then return {0, 'bad:' .. status} end
for parent in string.gmatch(redis.call('HGET', tkey(id), 'parents') or '', '%S+') do
  local st = redis.call('HGET', tkey(parent), 'status')
  if not st then return {0, 'missing:' .. parent} end
  if st == 'failed' or st == 'cancelled' then return {0, 'dead:' .. st .. ':' .. parent} end
end
local holder, uk = unique_holder(id)
if holder then return {0, 'unique:' .. holder .. ':' .. uk} end
revive(id)
add_fanout('revive', id, id)
redis.call('PUBLISH', P .. ':events', 'w')
return {fanout_step(CHUNK), 'ok'}
"""

# ARGV: prefix, now -> fan-out left (0/1)
FANOUT = PRELUDE + """
return fanout_step(CHUNK)
"""

# ARGV: prefix, now -> {now, ready count, first scheduled run_at or '', oldest due or ''}
PEEK = PRELUDE + """
local first = redis.call('ZRANGE', P .. ':scheduled', 0, 0, 'WITHSCORES')
local oldest = redis.call('ZRANGE', P .. ':readytime', 0, 0, 'WITHSCORES')
return {fmt(now), redis.call('ZCARD', P .. ':ready'), first[2] or '', oldest[2] or ''}
"""

# ARGV: prefix, now, finished before (offset from the client's clock, '' = any),
#       statuses... -> number deleted
PURGE = PRELUDE + """
local before = '+inf'
if ARGV[3] ~= '' then before = '(' .. fmt(now + tonumber(ARGV[3])) end
local wanted = {}
for i = 4, #ARGV do wanted[ARGV[i]] = true end
local deleted = 0
local ids = redis.call('ZRANGEBYSCORE', P .. ':done', '-inf', before)
for _, id in ipairs(ids) do
  local status = redis.call('HGET', tkey(id), 'status')
  if not status then
    redis.call('ZREM', P .. ':done', id)
    redis.call('ZREM', P .. ':all', id)
  elseif wanted[status] then
    forget(id, status)
    redis.call('DEL', tkey(id), P .. ':children:' .. id)
    redis.call('ZREM', P .. ':done', id)
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
    forget(id, 'pending')
    redis.call('DEL', key, P .. ':children:' .. id)
    deleted = deleted + 1
  end
end
return deleted
"""
