--- kbl.dist.launch: `kbl run ... --nproc N` starts N local ranks of the same
-- command under Open MPI's mpirun, which replaces this process (execvp), so
-- signals reach mpirun and through it every rank. Ranks talk over TCP on the
-- loopback interface (--mca btl self,tcp, btl_tcp_if_include lo), which works
-- in containers where shared memory between processes may not; each rank gets
-- an equal part of the cores (OMP_NUM_THREADS) unless that is set.
local ffi = require 'ffi'

ffi.cdef[[
int kbl_launch_execvp(const char *file, char *const argv[]) __asm__("execvp");
unsigned int kbl_launch_geteuid(void) __asm__("geteuid");
int kbl_launch_unsetenv(const char *name) __asm__("unsetenv");
long kbl_launch_sysconf(int name) __asm__("sysconf");
]]

local M = {}

local function on_path(name)
   for dir in (os.getenv('PATH') or ''):gmatch('[^:]+') do
      local f = io.open(dir .. '/' .. name, 'r')
      if f then f:close() return dir .. '/' .. name end
   end
   return nil
end

-- The mpirun command line for n ranks of `argv` (a list of strings).
function M.command(n, argv)
   local cmd = {'mpirun', '-n', tostring(n), '--oversubscribe',
      '--mca', 'btl', 'self,tcp', '--mca', 'btl_tcp_if_include', 'lo', '--mca', 'oob_tcp_if_include', 'lo'}
   if ffi.C.kbl_launch_geteuid() == 0 then table.insert(cmd, 2, '--allow-run-as-root') end
   local cores = tonumber(ffi.C.kbl_launch_sysconf(84)) or 1   -- _SC_NPROCESSORS_ONLN
   if n > cores then cmd[#cmd + 1] = '--bind-to'; cmd[#cmd + 1] = 'none' end
   if not os.getenv('OMP_NUM_THREADS') then
      cmd[#cmd + 1] = '-x'
      cmd[#cmd + 1] = 'OMP_NUM_THREADS=' .. math.max(1, math.floor(cores / n))
   end
   -- a preloaded library (a sanitizer's runtime, a profiler) is for the ranks, not mpirun
   local preload = os.getenv('LD_PRELOAD')
   if preload and preload ~= '' then
      cmd[#cmd + 1] = '-x'
      cmd[#cmd + 1] = 'LD_PRELOAD=' .. preload
   end
   for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
   return cmd
end

-- This command's arguments without --nproc (raw: as typed).
function M.without_nproc(raw)
   local out, i = {}, 1
   while i <= #raw do
      local a = raw[i]
      if a == '--nproc' then i = i + 1
      elseif not a:match('^%-%-nproc=') then out[#out + 1] = a end
      i = i + 1
   end
   return out
end

-- Replaces this process by mpirun running n ranks of `kbl run <rest>`.
-- Returns only on failure (an error).
function M.exec(n, raw_args)
   if type(n) ~= 'number' or n < 1 or n % 1 ~= 0 then
      error('--nproc must be a whole number of processes, 1 or more, got ' .. tostring(n), 0)
   end
   if os.getenv('OMPI_COMM_WORLD_SIZE') then
      error('--nproc: this process already runs under mpirun; give -n to mpirun instead', 0)
   end
   if not on_path('mpirun') then
      error('--nproc needs mpirun from Open MPI (install openmpi-bin and libopenmpi-dev, as scripts/setup.sh does)', 0)
   end
   local dist = require 'kbl.dist'
   if not dist.is_available() then error('--nproc: ' .. dist.unavailable_reason(), 0) end
   -- the ranks run the command line this process runs (bin/kbl exported LUA_PATH and KBL_LIB)
   local cli = debug.getinfo(1, 'S').source:sub(2):gsub('dist/launch%.lua$', 'cli.lua')
   local argv = {'luajit', cli}
   for _, a in ipairs(M.without_nproc(raw_args)) do argv[#argv + 1] = a end
   local cmd = M.command(n, argv)
   local c_argv, keep = require('kbl.sweep.proc').c_argv(cmd)   -- luacheck: no unused (keep holds the strings)
   io.stdout:flush()
   io.stderr:flush()
   ffi.C.kbl_launch_unsetenv('LD_PRELOAD')
   ffi.C.kbl_launch_execvp('mpirun', c_argv)
   error('--nproc: cannot start mpirun: ' .. require('kbl.io.fs').strerror(ffi.errno()), 0)
end

return M
