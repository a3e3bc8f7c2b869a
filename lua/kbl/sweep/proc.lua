--- kbl.sweep.proc: child processes for a sweep, through the FFI (posix_spawnp,
-- waitpid, kill): start a command with its output appended to a log file,
-- reap whichever child ends, signal the ones still running.
--
--   local pid = proc.spawn({'luajit', 'cli.lua', 'run', ...}, 'run_dir/kbl.log')
--   local pid, code = proc.reap()     -- nil when no child has ended yet
local ffi = require 'ffi'
local bit = require 'bit'

pcall(ffi.cdef, [[
int kbl_sweep_posix_spawnp(int *pid, const char *file, const void *actions, const void *attr,
                           char *const argv[], char *const envp[]) __asm__("posix_spawnp");
int kbl_sweep_waitpid(int pid, int *status, int options) __asm__("waitpid");
int kbl_sweep_kill(int pid, int sig) __asm__("kill");
int kbl_sweep_usleep(unsigned int usec) __asm__("usleep");
char *kbl_sweep_strerror(int errnum) __asm__("strerror");
extern char **environ;
]])
local C = ffi.C

local M = {}

-- A list of strings as a NULL-ended C argv (execvp, posix_spawnp), and the
-- table that keeps its strings alive: hold it until the call returns.
function M.c_argv(list)
   local cargv = ffi.new('char *[?]', #list + 1)   -- zero-filled: the last is NULL
   local keep = {}
   for i, a in ipairs(list) do
      keep[i] = ffi.new('char[?]', #a + 1, a)
      cargv[i - 1] = keep[i]
   end
   return cargv, keep
end

-- Starts argv[1] (looked up on PATH) with argv, stdout and stderr appended to
-- log. Returns the pid.
function M.spawn(argv, log)
   -- sh puts the output where it belongs and then becomes the command
   local full = {'/bin/sh', '-c', 'log=$1; shift; exec "$@" >>"$log" 2>&1', 'sh', log}
   for _, a in ipairs(argv) do full[#full + 1] = tostring(a) end
   local cargv, keep = M.c_argv(full)   -- luacheck: no unused (keep holds the strings)
   local pid = ffi.new('int[1]')
   local rc = C.kbl_sweep_posix_spawnp(pid, '/bin/sh', nil, nil, cargv, C.environ)
   if rc ~= 0 then
      error(string.format('cannot start %s: %s', argv[1], ffi.string(C.kbl_sweep_strerror(rc))), 0)
   end
   return pid[0]
end

-- A child that has ended: its pid and exit code (128 + the signal that
-- killed it); nil when none has (wait = false) or there is no child.
function M.reap(wait)
   local st = ffi.new('int[1]')
   local pid = C.kbl_sweep_waitpid(-1, st, wait and 0 or 1)   -- 1: WNOHANG
   if pid <= 0 then return nil end
   local s = st[0]
   local sig = bit.band(s, 0x7f)
   if sig == 0 then return pid, bit.band(bit.rshift(s, 8), 0xff) end
   return pid, 128 + sig
end

function M.kill(pid, sig) return C.kbl_sweep_kill(pid, sig or 15) == 0 end

function M.sleep(seconds) C.kbl_sweep_usleep(math.floor(seconds * 1e6)) end

return M
