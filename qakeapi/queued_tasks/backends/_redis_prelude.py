"""Lua functions every Redis queue script starts with (see :mod:`._redis_scripts`).

They read the clock (``ARGV[2]`` or the server's ``TIME``), keep the ready/scheduled sets,
the counts and the listing indexes in step with a task's state (``move``), and work through
``P:fanout``: releasing, cancelling and reviving children, at most ``CHUNK`` per script.
"""

from __future__ import annotations

from ...constants import FANOUT_CHUNK

__all__ = ["PRELUDE"]

PRELUDE = """
redis.replicate_commands()
local P = ARGV[1]
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[2])
end
local CHUNK = @CHUNK@
local function tkey(id) return P .. ':t:' .. id end
local STATUSES = {pending = true, running = true, succeeded = true, failed = true,
  cancelled = true}
local function fmt(x) return string.format('%.17g', x) end
local function count(status, delta)
  if status then redis.call('HINCRBY', P .. ':counts', status, delta) end
end
local function move(id, old, new)
  local nm = redis.call('HGET', tkey(id), 'nm')
  if old then
    count(old, -1)
    redis.call('ZREM', P .. ':st:' .. old, id)
    if nm then redis.call('ZREM', P .. ':ns:' .. old .. ':' .. nm, id) end
  end
  if new then
    count(new, 1)
    local created = redis.call('ZSCORE', P .. ':all', id)
    if created then
      redis.call('ZADD', P .. ':st:' .. new, created, id)
      if nm then redis.call('ZADD', P .. ':ns:' .. new .. ':' .. nm, created, id) end
    end
  end
end
local function forget(id, status)
  local nm = redis.call('HGET', tkey(id), 'nm')
  move(id, status, false)
  if nm then redis.call('ZREM', P .. ':nm:' .. nm, id) end
  redis.call('ZREM', P .. ':all', id)
end
local function num(value)
  local n = tonumber(value)
  if n and n == n then return n end
  return 0
end
local function make_ready(id)
  local h = redis.call('HMGET', tkey(id), 'score', 'due', 'rm')
  local rm = h[3]
  if not rm then
    rm = string.format('%015d', 0) .. '|' .. id
    redis.call('HSET', tkey(id), 'rm', rm)
  end
  redis.call('ZADD', P .. ':ready', num(h[1]), rm)
  redis.call('ZADD', P .. ':readytime', num(h[2]), id)
end
local function schedule(id)
  local run_at = tonumber(redis.call('HGET', tkey(id), 'run_at'))
  if run_at and run_at > now then
    redis.call('ZADD', P .. ':scheduled', run_at, id)
  else
    make_ready(id)
  end
end
local function set_due(id, due)
  local h = redis.call('HMGET', tkey(id), 'score', 'due')
  local priority = math.floor((num(h[2]) - num(h[1])) / 1e10 + 0.5)
  redis.call('HSET', tkey(id), 'due', due, 'score', -priority * 1e10 + due)
end
local function unready(id)
  local rm = redis.call('HGET', tkey(id), 'rm')
  if rm then redis.call('ZREM', P .. ':ready', rm) end
  redis.call('ZREM', P .. ':readytime', id)
  redis.call('ZREM', P .. ':scheduled', id)
end
local function end_task(id, status, reason)
  local key = tkey(id)
  move(id, redis.call('HGET', key, 'status'), status)
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
local function dead_reason(id, status)
  if status == 'failed' then return 'parent ' .. id .. ' failed' end
  return 'parent ' .. id .. ' was cancelled'
end
local function add_fanout(kind, id, arg)
  if redis.call('EXISTS', P .. ':children:' .. id) == 1 then
    redis.call('RPUSH', P .. ':fanout', cjson.encode({k = kind, t = id, a = arg, c = '0'}))
  end
end
local function after_end(id, status)
  if status == 'succeeded' then
    add_fanout('release', id, '')
  else
    add_fanout('cancel', id, dead_reason(id, status))
  end
end
local function waiting_of(id)
  local n = 0
  for parent in string.gmatch(redis.call('HGET', tkey(id), 'parents') or '', '%S+') do
    local st = redis.call('HGET', tkey(parent), 'status')
    if st and st ~= 'succeeded' then n = n + 1 end
  end
  return n
end
local function unique_holder(id)
  local uk = redis.call('HGET', tkey(id), 'uk')
  if not uk or uk == '' then return false end
  local holder = redis.call('HGET', P .. ':unique', uk)
  if holder and holder ~= id then return holder, uk end
  return false
end
local function revive(id)
  local key = tkey(id)
  move(id, redis.call('HGET', key, 'status'), 'pending')
  redis.call('HSET', key, 'status', 'pending', 'attempts', '0', 'error', '', 'result', '',
    'cancel_reason', '', 'cancel_requested', '0', 'finished_at', '', 'run_at', '',
    'worker_id', '', 'lease', '')
  set_due(id, now)
  redis.call('ZREM', P .. ':done', id)
  local uk = redis.call('HGET', key, 'uk')
  if uk and uk ~= '' then redis.call('HSET', P .. ':unique', uk, id) end
  local waiting = waiting_of(id)
  redis.call('HSET', key, 'waiting', waiting)
  if waiting == 0 then schedule(id) end
end
local function release_child(id)
  if redis.call('HGET', tkey(id), 'status') ~= 'pending' then return false end
  local waiting = waiting_of(id)
  redis.call('HSET', tkey(id), 'waiting', waiting)
  if waiting > 0 then return false end
  schedule(id)
  return true
end
local function cancel_child(id, reason)
  local st = redis.call('HGET', tkey(id), 'status')
  if st == 'pending' or st == 'running' then
    end_task(id, 'cancelled', reason)
    add_fanout('cancel', id, reason)
  end
end
local function revive_blocked(id, r1, r2)
  for parent in string.gmatch(redis.call('HGET', tkey(id), 'parents') or '', '%S+') do
    local h = redis.call('HMGET', tkey(parent), 'status', 'cancel_reason')
    if not h[1] then
      return 'parent ' .. parent .. ' no longer exists', dead_reason(id, 'cancelled')
    end
    if h[1] == 'failed' or (h[1] == 'cancelled' and h[2] ~= r1 and h[2] ~= r2) then
      return dead_reason(parent, h[1]), dead_reason(parent, h[1])
    end
  end
  local holder, uk = unique_holder(id)
  if holder then
    return "unique key '" .. uk .. "' is taken by task " .. holder, dead_reason(id, 'cancelled')
  end
  return false
end
local function revive_child(id, root)
  local r1, r2 = dead_reason(root, 'failed'), dead_reason(root, 'cancelled')
  local h = redis.call('HMGET', tkey(id), 'status', 'cancel_reason')
  if h[1] ~= 'cancelled' or (h[2] ~= r1 and h[2] ~= r2) then return end
  local own, cascade = revive_blocked(id, r1, r2)
  if own then
    redis.call('HSET', tkey(id), 'cancel_reason', own)
    add_fanout('cancel', id, cascade)
  else
    revive(id)
    add_fanout('revive', id, root)
  end
end
local function fanout_step(budget)
  local released = false
  while budget > 0 do
    local raw = redis.call('LINDEX', P .. ':fanout', 0)
    if not raw then break end
    local job = cjson.decode(raw)
    local page = redis.call('SSCAN', P .. ':children:' .. job.t, job.c, 'COUNT', budget)
    budget = budget - #page[2] - 1
    for _, child in ipairs(page[2]) do
      if job.k == 'release' then
        if release_child(child) then released = true end
      elseif job.k == 'cancel' then
        cancel_child(child, job.a)
      else
        revive_child(child, job.a)
      end
    end
    if page[1] == '0' then
      redis.call('LPOP', P .. ':fanout')
    else
      job.c = page[1]
      redis.call('LSET', P .. ':fanout', 0, cjson.encode(job))
    end
  end
  if released then redis.call('PUBLISH', P .. ':events', 'w') end
  if redis.call('LLEN', P .. ':fanout') > 0 then return 1 end
  return 0
end
""".replace("@CHUNK@", str(FANOUT_CHUNK))
