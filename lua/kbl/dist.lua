--- kbl.dist: data-parallel training over processes. Under mpirun (Open MPI)
-- every process is a rank holding a replica of the model; collectives act in
-- place on tensors (CPU tensors through MPI, CUDA tensors through NCCL):
--
--   local dist = kbl.dist
--   dist.rank(), dist.world_size()               --> 0 and 1 outside mpirun
--   dist.all_reduce(t)                           -- t = the sum over ranks ('sum', 'avg', 'max', 'min')
--   dist.broadcast(t, 0)                         -- t = rank 0's t
--   dist.barrier()
--   local s = dist.sum(x)                        -- differentiable: a new tensor, the sum over ranks
--
-- The layer is libkbl_mpi.so, beside libkbl.so, loaded only when the process
-- runs under mpirun, so kbl runs without MPI installed; outside mpirun every
-- call is the one-process case (all_reduce leaves t as it is).
-- is_available() says whether the library loads, unavailable_reason() why not.
-- Every collective waits at most timeout() seconds (KBL_DIST_TIMEOUT, default
-- 300) and then ends the job naming the collective: a rank that died or hangs
-- never leaves the others waiting.
local ffi = require 'ffi'
local T = require 'kbl.tensor'

local M = {}

local lib, why_not, started
local OPS = {sum = 0, max = 1, min = 2, avg = 3}

local function dirname(p) return p and p:match('^(.*)/[^/]*$') end

-- Where libkbl_mpi.so may be: beside the libkbl in use when that was named
-- (KBL_LIB, or the specs' kbl.lib.path: it must match that libkbl), else the
-- places kbl.lib looks for libkbl (kbl.lib.library_paths).
local function candidates()
   local named = os.getenv('KBL_LIB')
   local given = package.loaded['kbl.lib.path']
   if not named and type(given) == 'string' then named = given end
   if named and dirname(named) then return {dirname(named) .. '/libkbl_mpi.so'}, true end
   return (require('kbl.lib').library_paths('libkbl_mpi')), false
end

-- Loads libkbl_mpi.so once; returns it or nil (why_not says why).
local function load()
   if lib or why_not then return lib end
   require 'kbl'   -- kbl_tensor's declaration
   local ok, text = pcall(require, 'kbl.dist_cdef')
   if not ok then
      why_not = 'kbl was built without kbl.dist (no MPI when it was configured: install openmpi-bin and '
         .. 'libopenmpi-dev, then rebuild)'
      return nil
   end
   ffi.cdef(text)
   local exists = require('kbl.io.fs').exists
   local errs = {}
   local list, named = candidates()
   for _, p in ipairs(list) do
      if exists(p) then
         -- global: Open MPI's components, loaded by dlopen, look for libmpi's symbols
         local okl, l = pcall(ffi.load, p, true)
         if okl then
            -- never unloaded: MPI's exit handlers must find their code (see kbl.lib)
            pcall(function() ffi.C.dlopen(p, 2 + 0x1000) end)
            lib = l
            return lib
         end
         errs[#errs + 1] = tostring(l)
      end
   end
   if not named and #errs == 0 then   -- the system's library path
      local okl, l = pcall(ffi.load, 'kbl_mpi', true)
      if okl then lib = l return lib end
   end
   why_not = #errs > 0 and ('cannot load libkbl_mpi.so: ' .. errs[1])
      or 'libkbl_mpi.so is not installed (kbl was built without MPI: install openmpi-bin and libopenmpi-dev)'
   return nil
end

--- Whether this process was started by mpirun (Open MPI, or another PMI launcher).
-- @treturn boolean
-- @usage if kbl.dist.launched() then print('rank', kbl.dist.rank()) end
function M.launched()
   return os.getenv('OMPI_COMM_WORLD_SIZE') ~= nil or os.getenv('PMIX_RANK') ~= nil or os.getenv('PMI_RANK') ~= nil
end

--- Whether libkbl_mpi.so (the MPI layer) loads here.
-- @treturn boolean
-- @usage print(kbl.dist.is_available())
function M.is_available() return load() ~= nil end

--- Why libkbl_mpi.so does not load ('' when it does).
-- @treturn string
-- @usage if not kbl.dist.is_available() then print(kbl.dist.unavailable_reason()) end
function M.unavailable_reason()
   load()
   return why_not or ''
end

--- The MPI library's name and version ('' without it).
-- @treturn string
-- @usage print(kbl.dist.library_version())   --> Open MPI v4.1.4
function M.library_version()
   if not load() then return '' end
   return ffi.string(lib.kbl_dist_library_version())
end

local function raise(level)
   error(ffi.string(lib.kbl_dist_last_error()), level + 1)
end

--- Joins the job when under mpirun (MPI_Init); a no-op otherwise. Every
-- function of kbl.dist calls it first.
-- @treturn boolean whether this process is one of an mpirun job
-- @usage kbl.dist.init()
function M.init()
   if started ~= nil then return started end
   started = false
   if not M.launched() then return false end
   if not load() then
      error('kbl.dist: started by mpirun but ' .. why_not, 2)
   end
   if lib.kbl_dist_init() ~= 0 then raise(2) end
   local t = tonumber(os.getenv('KBL_DIST_TIMEOUT') or '')
   if t then lib.kbl_dist_set_timeout(t) end
   started = true
   return true
end

--- Whether collectives go to other processes (world_size() > 1).
-- @treturn boolean
-- @usage if kbl.dist.is_distributed() then kbl.dist.barrier() end
function M.is_distributed()
   return M.init() and lib.kbl_dist_world_size() > 1
end

--- This process's rank, from 0 (0 outside mpirun).
-- @treturn number
-- @usage if kbl.dist.rank() == 0 then print('writes the records') end
function M.rank() return M.init() and lib.kbl_dist_rank() or 0 end
--- The number of processes of the job (1 outside mpirun).
-- @treturn number
-- @usage print(kbl.dist.world_size())
function M.world_size() return M.init() and lib.kbl_dist_world_size() or 1 end
--- This process's rank among those on its machine (picks its GPU).
-- @treturn number
-- @usage print(kbl.dist.local_rank())
function M.local_rank() return M.init() and lib.kbl_dist_local_rank() or 0 end

--- How long a collective waits before it ends the job, in seconds (KBL_DIST_TIMEOUT, default 300; <= 0 for ever).
-- @treturn number
-- @usage print(kbl.dist.timeout())
function M.timeout() return M.init() and lib.kbl_dist_get_timeout() or 0 end
--- Sets how long a collective waits before it ends the job naming itself.
-- @tparam number seconds <= 0 waits for ever
-- @usage kbl.dist.set_timeout(60)
function M.set_timeout(seconds)
   if type(seconds) ~= 'number' then error('kbl.dist.set_timeout: expects seconds, got ' .. type(seconds), 2) end
   if M.init() then lib.kbl_dist_set_timeout(seconds) end
end

local function check_tensor(t, what)
   if not T.is_tensor(t) then error(string.format('kbl.dist.%s: expects a tensor, got %s', what, type(t)), 3) end
   if not t:is_contiguous() then
      error(string.format('kbl.dist.%s: the tensor must be contiguous (call :contiguous() first)', what), 3)
   end
end

--- Reduces t over every rank, in place: every rank then holds the result.
-- CPU tensors go through MPI, CUDA tensors through NCCL. One process: t as it is.
-- @tparam tensor t contiguous
-- @tparam[opt='sum'] string op 'sum', 'avg', 'max' or 'min'
-- @treturn tensor t
-- @usage kbl.dist.all_reduce(t, 'avg')
function M.all_reduce(t, op)
   op = op or 'sum'
   if not OPS[op] then
      error(string.format("kbl.dist.all_reduce: op must be 'sum', 'avg', 'max' or 'min', got %s", tostring(op)), 2)
   end
   check_tensor(t, 'all_reduce')
   if not M.is_distributed() then return t end
   if lib.kbl_dist_all_reduce(T.live(t), OPS[op]) ~= 0 then M.abort(ffi.string(lib.kbl_dist_last_error())) end
   return t
end

--- Copies rank root's t into t on every rank, in place.
-- @tparam tensor t contiguous, of one shape and dtype on every rank
-- @tparam[opt=0] number root the rank whose values everyone gets
-- @treturn tensor t
-- @usage kbl.dist.broadcast(w, 0)
function M.broadcast(t, root)
   root = root or 0
   check_tensor(t, 'broadcast')
   local n = M.world_size()
   if type(root) ~= 'number' or root < 0 or root >= n or root % 1 ~= 0 then
      error(string.format('kbl.dist.broadcast: root must be a rank, 0 to %d, got %s', n - 1, tostring(root)), 2)
   end
   if not M.is_distributed() then return t end
   if lib.kbl_dist_broadcast(T.live(t), root) ~= 0 then M.abort(ffi.string(lib.kbl_dist_last_error())) end
   return t
end

--- Waits until every rank has called it.
-- @usage kbl.dist.barrier()
function M.barrier()
   if M.is_distributed() and lib.kbl_dist_barrier() ~= 0 then M.abort(ffi.string(lib.kbl_dist_last_error())) end
end

--- x summed over the ranks, as a new tensor, differentiable: its gradient is
-- the sum of the ranks' gradients (synchronized batch norm's statistics).
-- One process: a copy of x.
-- @tparam tensor x
-- @treturn tensor
-- @usage local total = kbl.dist.sum(x:sum(1))
function M.sum(x)
   if not T.is_tensor(x) then error('kbl.dist.sum: expects a tensor, got ' .. type(x), 2) end
   M.init()
   return T.wrap(require('kbl.lib').C.kbl_all_reduce_sum(T.live(x)))
end

--- Every rank's string, in rank order.
-- @tparam string s
-- @treturn table a list of world_size() strings
-- @usage local all = kbl.dist.allgather_string(tostring(n))
function M.allgather_string(s)
   if not M.is_distributed() then return {s} end
   local n = lib.kbl_dist_world_size()
   local lens, out = ffi.new('int64_t[?]', n), ffi.new('char *[1]')
   if lib.kbl_dist_allgather_bytes(s, #s, lens, out) ~= 0 then M.abort(ffi.string(lib.kbl_dist_last_error())) end
   local res, off = {}, 0
   for r = 0, n - 1 do
      res[r + 1] = ffi.string(out[0] + off, lens[r])
      off = off + tonumber(lens[r])
   end
   lib.kbl_dist_free(out[0])
   return res
end

--- Rank root's string on every rank.
-- @tparam string s (read on root only)
-- @tparam[opt=0] number root
-- @treturn string
-- @usage local text = kbl.dist.broadcast_string(text, 0)
function M.broadcast_string(s, root)
   root = root or 0
   if not M.is_distributed() then return s end
   return M.allgather_string(M.rank() == root and s or '')[root + 1]
end

--- Ends every rank of the job with message (on stderr, naming this rank);
-- outside mpirun, raises it as an error.
-- @tparam string message
-- @tparam[opt=1] number code the exit status
-- @usage kbl.dist.abort('the data differ between ranks')
function M.abort(message, code)
   if started and lib then lib.kbl_dist_abort(tostring(message), code or 1) end
   error(message, 2)
end

--- Called by the command line before it exits on an error: one failing rank
-- ends the job at once (MPI_Abort) instead of leaving the others to time out.
-- After a signal that stopped every rank at one step (kbl.dist.trainer sets
-- M.stopping), the ranks instead wait for each other (rank 0 writes the
-- checkpoint first) and end normally.
-- @usage kbl.dist.on_failure()
function M.on_failure()
   if started and lib and lib.kbl_dist_world_size() > 1 and M.stopping then
      M.barrier()
      return
   end
   if started and lib and lib.kbl_dist_world_size() > 1 then
      io.stderr:flush()
      lib.kbl_dist_abort('failed (the message above); ending every rank of the job', 1)
   end
end

--- Ends MPI now (it also ends at exit: mpirun counts a rank that exits without it as failed).
-- @usage kbl.dist.finalize()
function M.finalize()
   if started and lib then lib.kbl_dist_finalize() end
   started = nil
end

M.OPS = OPS

--- The FFI handle of libkbl_mpi.so (its kbl_dist_* functions), or nil.
-- @usage local lib = kbl.dist.lib()
function M.lib() return load() end

return M
