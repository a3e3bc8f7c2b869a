--- kbl.records.status: status.json in the run directory, what a person or a
-- script reads to know where a run stands: {"state": "not_started" | "running"
-- | "interrupted" | "failed" | "finished", "pid", "host", "started", "updated",
-- "message", ...}. Every write replaces the file atomically. A run does not
-- start in a directory whose status says running under a process that is
-- still alive on this host.
--
-- A "running" status whose run is gone (killed, the machine rebooted) reads
-- as state "stopped", with recorded_state = "running" and a message that says
-- how to resume: the run directory's lock (kbl.records.lock) is free, or held
-- by this process for a new run, or, without a lock file, the recorded pid is
-- not alive. A status from another host is left as it is: it cannot be checked.
--
--   status.start(run_dir)                      -- raises if another run holds it
--   status.failed(run_dir, err)  status.interrupted(run_dir, {message = ...})
--   status.finished(run_dir)
--   status.read(run_dir)                       -- nil, or the status as above
local ffi = require 'ffi'
local json = require 'dkjson'
local binfile = require 'kbl.io.binfile'
local fs = require 'kbl.io.fs'
local lock = require 'kbl.records.lock'

pcall(ffi.cdef, 'int kill(int pid, int sig);')
pcall(ffi.cdef, 'int getpid(void);')
pcall(ffi.cdef, 'int gethostname(char *name, size_t len);')

local M = {}

M.states = {not_started = true, running = true, interrupted = true, failed = true, finished = true}

function M.path(dir) return dir .. '/status.json' end

local function hostname()
   local buf = ffi.new('char[256]')
   if ffi.C.gethostname(buf, 255) ~= 0 then return 'localhost' end
   return ffi.string(buf)
end

function M.pid() return ffi.C.getpid() end
M.host = hostname

-- Whether a process with this pid runs on this machine (EPERM: it does,
-- under another user). A zombie (dead, not yet reaped) does not count.
function M.is_alive(pid)
   if type(pid) ~= 'number' or pid <= 0 or pid % 1 ~= 0 then return false end
   if ffi.C.kill(pid, 0) ~= 0 and ffi.errno() ~= 1 then return false end
   local f = io.open('/proc/' .. pid .. '/stat', 'r')
   if f then
      local stat = f:read('*l') or ''
      f:close()
      if stat:match('^%d+ %b() Z') then return false end
   end
   return true
end

-- Whether the run a "running" status names has ended without saying so.
local function run_gone(dir, s)
   if s.host and s.host ~= hostname() then return false end   -- cannot tell from here
   if s.pid == M.pid() then return false end
   if not M.is_alive(s.pid) then return true end
   local l = lock.state(dir)   -- the pid may be another process's by now
   return l == 'free' or l == 'here'
end

-- The status table, or nil when the directory has none; a file that is not
-- JSON is an error naming it. A running status whose run is gone reads as
-- stopped (see the top); opts.raw gives the file as it is.
function M.read(dir, opts)
   local text = fs.read(M.path(dir))
   if not text then return nil end
   local v, _, err = json.decode(text, 1, nil)
   if type(v) ~= 'table' then error(string.format('status: %s is not valid JSON: %s', M.path(dir), err or '?'), 2) end
   if v.state == 'running' and not (opts and opts.raw) and run_gone(dir, v) then
      v.recorded_state, v.state = 'running', 'stopped'
      v.message = string.format('the run stopped without recording why (its process, pid %s, is gone); '
         .. 'continue it with: kbl run --resume %s', tostring(v.pid), dir)
   end
   return v
end

local function iso_now() return os.date('!%Y-%m-%dT%H:%M:%SZ') end

-- Replaces the status with `fields` plus the time; keeps `started`.
function M.write(dir, fields)
   if not M.states[fields.state] then error('status: unknown state ' .. tostring(fields.state), 2) end
   local ok, old = pcall(M.read, dir, {raw = true})
   old = ok and old or {}
   local s = {}
   for k, v in pairs(fields) do s[k] = v end
   s.started = s.started or old.started
   s.updated = iso_now()
   local order = {'state', 'pid', 'host', 'started', 'updated', 'message', 'step', 'epoch', 'checkpoint', 'resume',
      'test'}
   binfile.write_atomic(M.path(dir), json.encode(s, {indent = true, keyorder = order}) .. '\n', 'status')
   return s
end

function M.init(dir) return M.write(dir, {state = 'not_started'}) end

-- Marks the run as running in this process, after checking no live process
-- holds the directory (see read()). opts.force skips the check (a run from
-- another host).
function M.start(dir, opts)
   opts = opts or {}
   local old = M.read(dir)
   local me, host = M.pid(), hostname()
   if old and old.state == 'running' and not opts.force and old.pid ~= me then
      if old.host and old.host ~= host then
         error(string.format('status: %s says a run is in progress on host %s (pid %s); '
            .. 'cannot check that process from %s', M.path(dir), old.host, tostring(old.pid), host), 2)
      end
      error(string.format('status: another run (pid %s) is still running in %s; '
         .. 'stop it or use another run directory', tostring(old.pid), dir), 2)
   end
   return M.write(dir, {state = 'running', pid = me, host = host, started = iso_now(), step = opts.step,
      epoch = opts.epoch, resume = opts.resume}), old
end

function M.interrupted(dir, fields)
   local s = {state = 'interrupted'}
   for k, v in pairs(fields or {}) do s[k] = v end
   return M.write(dir, s)
end

function M.failed(dir, message, fields)
   local s = {state = 'failed', message = tostring(message)}
   for k, v in pairs(fields or {}) do s[k] = v end
   return M.write(dir, s)
end

function M.finished(dir, fields)
   local s = {state = 'finished'}
   for k, v in pairs(fields or {}) do s[k] = v end
   return M.write(dir, s)
end

return M
