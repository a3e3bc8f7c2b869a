--- kbl.records.lock: the exclusive lock on a run directory, flock(2) on
-- RUN_DIR/run.lock, taken before a run writes anything there and held for the
-- life of the run; the kernel drops it when the process ends, however it ends
-- (SIGKILL included), so a lock is never left behind by a dead run. The file
-- holds "<pid> <host>" of the holder, for the message of the run that loses.
--
--   lock.acquire(dir)              -- raises naming dir and the holder's pid
--   lock.state(dir)                -- 'here', 'held', 'free', or nil (no lock file)
--   lock.release(dir)
local ffi = require 'ffi'

pcall(ffi.cdef, [[
int kbl_lock_open(const char *path, int flags, ...) __asm__("open");
int kbl_lock_flock(int fd, int op) __asm__("flock");
int kbl_lock_close(int fd) __asm__("close");
int kbl_lock_ftruncate(int fd, int64_t length) __asm__("ftruncate");
intptr_t kbl_lock_write(int fd, const void *buf, size_t n) __asm__("write");
char *kbl_lock_realpath(const char *path, char *resolved) __asm__("realpath");
int kbl_lock_usleep(unsigned int usec) __asm__("usleep");
int kbl_lock_getpid(void) __asm__("getpid");
int kbl_lock_gethostname(char *name, size_t len) __asm__("gethostname");
]])
local C = ffi.C

local O_RDONLY, O_RDWR, O_CREAT, O_CLOEXEC = 0, 2, 64, 524288
local LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8
local EINTR, EWOULDBLOCK, ENOENT = 4, 11, 2

local M = {NAME = 'run.lock'}

-- real path of a directory -> {fd =, count =}: the locks this process holds
local held = {}

function M.path(dir) return dir .. '/' .. M.NAME end

local function realpath(dir)
   local buf = ffi.new('char[4097]')
   if C.kbl_lock_realpath(dir, buf) == nil then return nil end
   return ffi.string(buf)
end

local function flock(fd, op)
   while true do
      if C.kbl_lock_flock(fd, op) == 0 then return true end
      local e = ffi.errno()
      if e ~= EINTR then return false, e end
   end
end

local fs = require 'kbl.io.fs'
local strerror = fs.strerror

-- "pid host" of the holder, from the lock file (nil when it is not written yet).
local function holder(dir)
   local text = fs.read(M.path(dir))
   if not text then return nil end
   local pid, host = text:match('^(%d+) (%S+)')
   return tonumber(pid), host
end

local function hostname()
   local buf = ffi.new('char[256]')
   if C.kbl_lock_gethostname(buf, 255) ~= 0 then return 'localhost' end
   return ffi.string(buf)
end

-- Takes the lock of dir (which exists) or raises one line naming dir and the
-- process that holds it. Taking it again in the same process only counts.
-- A process that only looks (state()) holds it for a moment, so a busy lock
-- is tried again for 0.2 s before the run gives up.
function M.acquire(dir)
   local key = realpath(dir)
   if not key then
      local e = ffi.errno()
      error(string.format('cannot open the run directory %s: %s (errno %d)', dir, strerror(e), e), 0)
   end
   if held[key] then
      held[key].count = held[key].count + 1
      return true
   end
   local path = M.path(dir)
   local fd = C.kbl_lock_open(path, O_RDWR + O_CREAT + O_CLOEXEC, ffi.cast('int', 420))   -- 0644
   if fd < 0 then
      local e = ffi.errno()
      error(string.format('cannot create the lock file %s: %s (errno %d)', path, strerror(e), e), 0)
   end
   local ok, e
   for _ = 1, 20 do
      ok, e = flock(fd, LOCK_EX + LOCK_NB)
      if ok or e ~= EWOULDBLOCK then break end
      C.kbl_lock_usleep(10000)
   end
   if not ok then
      C.kbl_lock_close(fd)
      if e ~= EWOULDBLOCK then
         error(string.format('cannot lock %s: %s (errno %d)', path, strerror(e), e), 0)
      end
      local pid, host = holder(dir)
      local by = pid and string.format('pid %d%s', pid, host ~= hostname() and (' on ' .. host) or '')
         or 'a process whose pid is not recorded'
      error(string.format('the run directory %s is in use by another run (%s, holding %s); '
         .. 'wait for it to end or use another run directory', dir, by, path), 0)
   end
   local text = string.format('%d %s\n', C.kbl_lock_getpid(), hostname())
   if C.kbl_lock_ftruncate(fd, 0) ~= 0 or C.kbl_lock_write(fd, text, #text) ~= #text then
      e = ffi.errno()
      C.kbl_lock_close(fd)
      error(string.format('cannot write %s: %s (errno %d)', path, strerror(e), e), 0)
   end
   held[key] = {fd = fd, count = 1}
   return true
end

-- Gives back one acquire(); the last one unlocks.
function M.release(dir)
   local key = realpath(dir)
   local h = key and held[key]
   if not h then return end
   h.count = h.count - 1
   if h.count > 0 then return end
   held[key] = nil
   flock(h.fd, LOCK_UN)
   C.kbl_lock_close(h.fd)
end

-- 'here' (this process holds it), 'held' (another process does), 'free', or
-- nil when dir has no lock file (a run of an older kbl, or none yet). Looking
-- takes a shared lock for a moment and creates nothing.
function M.state(dir)
   local key = realpath(dir)
   if key and held[key] then return 'here' end
   local fd = C.kbl_lock_open(M.path(dir), O_RDONLY + O_CLOEXEC)
   if fd < 0 then
      if ffi.errno() == ENOENT then return nil end
      return 'held'   -- cannot look: assume the worst
   end
   local ok = flock(fd, LOCK_SH + LOCK_NB)
   if ok then flock(fd, LOCK_UN) end
   C.kbl_lock_close(fd)
   return ok and 'free' or 'held'
end

M.holder = holder

return M
