-- kbl.records.status: status.json in the run directory, what a person or a
-- script reads to know where a run stands: {"state": "not_started" | "running"
-- | "interrupted" | "failed" | "finished", "pid", "host", "started", "updated",
-- "message", ...}. Every write replaces the file atomically. A run does not
-- start in a directory whose status says running under a process that is
-- still alive on this host.
--
--   status.start(run_dir)                      -- raises if another run holds it
--   status.failed(run_dir, err)  status.interrupted(run_dir, {message = ...})
--   status.finished(run_dir)
local ffi = require 'ffi'
local json = require 'dkjson'
local binfile = require 'kbl.io.binfile'

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

-- The status table, or nil when the directory has none; a file that is not
-- JSON is an error naming it.
function M.read(dir)
   local f = io.open(M.path(dir), 'rb')
   if not f then return nil end
   local text = f:read('*a')
   f:close()
   local v, _, err = json.decode(text, 1, nil)
   if type(v) ~= 'table' then error(string.format('status: %s is not valid JSON: %s', M.path(dir), err or '?'), 2) end
   return v
end

local function iso_now() return os.date('!%Y-%m-%dT%H:%M:%SZ') end

-- Replaces the status with `fields` plus the time; keeps `started`.
function M.write(dir, fields)
   if not M.states[fields.state] then error('status: unknown state ' .. tostring(fields.state), 2) end
   local ok, old = pcall(M.read, dir)
   old = ok and old or {}
   local s = {}
   for k, v in pairs(fields) do s[k] = v end
   s.started = s.started or old.started
   s.updated = iso_now()
   local order = {'state', 'pid', 'host', 'started', 'updated', 'message', 'step', 'epoch', 'checkpoint', 'resume'}
   binfile.write_atomic(M.path(dir), json.encode(s, {indent = true, keyorder = order}) .. '\n', 'status')
   return s
end

function M.init(dir) return M.write(dir, {state = 'not_started'}) end

-- Marks the run as running in this process, after checking no live process
-- holds the directory. opts.force skips the check (a run from another host).
function M.start(dir, opts)
   opts = opts or {}
   local old = M.read(dir)
   local me, host = M.pid(), hostname()
   if old and old.state == 'running' and not opts.force and old.pid ~= me then
      if old.host and old.host ~= host then
         error(string.format('status: %s says a run is in progress on host %s (pid %s); '
            .. 'cannot check that process from %s', M.path(dir), old.host, tostring(old.pid), host), 2)
      end
      if M.is_alive(old.pid) then
         error(string.format('status: another run (pid %d) is still running in %s; '
            .. 'stop it or use another run directory', old.pid, dir), 2)
      end
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
