--- kbl.memory: keeps LuaJIT's collector aware of tensor memory, and kbl.scope,
-- which frees the tensors made inside a function when it returns.
--
-- The collector sees a tensor as a small cdata and cannot feel the megabytes
-- behind it (Torch7's best-known pain). libkbl counts live bytes; each new
-- tensor checks the count and runs a full collection when it has doubled since
-- the last one, so memory stays bounded however a program holds its tensors.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local C = lib.C
local handle_ct = lib.handle_ct

local M = {}

local MIN_THRESHOLD = 64 * 1024 * 1024
local threshold, cuda_threshold = MIN_THRESHOLD, MIN_THRESHOLD
local scopes = {}
local cuda_stats = ffi.new('int64_t[5]')

-- Device memory counts the same way, once a CUDA tensor exists (before that the
-- backend is not even loaded, and this costs one comparison).
local function cuda_live()
   C.kbl_cuda_memory_stats(cuda_stats)
   return tonumber(cuda_stats[0])
end

--- Called for every tensor a kbl function makes (scopes, collector pacing).
-- @local
function M.track(h)
   local s = scopes[#scopes]
   if s then s[#s + 1] = h end
   local live = tonumber(C.kbl_memory_live_bytes())
   if live > threshold then
      collectgarbage('collect')
      live = tonumber(C.kbl_memory_live_bytes())
      threshold = math.max(MIN_THRESHOLD, 2 * live)
   end
   if h._p ~= nil and h._p.device ~= 0 and cuda_live() > cuda_threshold then
      collectgarbage('collect')
      cuda_threshold = math.max(MIN_THRESHOLD, 2 * cuda_live())
   end
end

--- Marks a tensor made inside a scope as one that outlives it (parameters,
-- buffers, optimizer state). Also kbl.keep.
-- @tparam tensor t
-- @treturn tensor t
-- @usage self.weight = kbl.keep(kbl.randn(3, 3))
function M.keep(t)
   t._kept = 1
   return t
end

local function mark_returned(keep, v, depth)
   if type(v) == 'cdata' and ffi.istype(handle_ct, v) then
      keep[v] = true
   elseif type(v) == 'table' and depth < 3 then
      for _, x in pairs(v) do mark_returned(keep, x, depth + 1) end
   end
end

local function pack(...) return {n = select('#', ...), ...} end

--- Runs fn(...) and frees the data of every tensor made inside it that it does
-- not return (directly, or in a returned table up to depth 3) and that nothing
-- else references: the deterministic end of a training step's intermediates.
-- Tensors kept with kbl.keep, or still referenced from C (a .grad, a graph
-- node), are left to the collector. Using a freed tensor is a clear error. Also kbl.scope.
-- @tparam function fn
-- @param ... fn's arguments
-- @return fn's results
-- @usage local loss = kbl.scope(function() return step(batch):detach() end)
function M.scope(fn, ...)
   local made = {}
   scopes[#scopes + 1] = made
   local res = pack(pcall(fn, ...))
   scopes[#scopes] = nil
   local keep = {}
   for i = 2, res.n do mark_returned(keep, res[i], 0) end
   local parent = scopes[#scopes]
   for i = #made, 1, -1 do -- newest first: outputs release their graphs' hold on inputs
      local h = made[i]
      if keep[h] or h._kept ~= 0 then
         if parent then parent[#parent + 1] = h end
      elseif h._p ~= nil and h._p.refcount == 1 then
         C.kbl_tensor_free_data(h._p)
      end
   end
   if not res[1] then error(res[2], 0) end
   return unpack(res, 2, res.n)
end

--- Host memory counts of the allocator.
-- @treturn table {live_bytes, peak_bytes, cached_bytes, ...}
-- @usage print(kbl.memory.stats().peak_bytes)
function M.stats()
   return {
      live_bytes = tonumber(C.kbl_memory_live_bytes()),
      peak_bytes = tonumber(C.kbl_memory_peak_bytes()),
      cached_bytes = tonumber(C.kbl_memory_cached_bytes()),
      allocations = tonumber(C.kbl_memory_alloc_count()),
   }
end

--- Gives the allocator's cached (free) host blocks back to the system.
-- @usage kbl.memory.empty_cache()
function M.empty_cache() C.kbl_memory_empty_cache() end
--- Starts the peak count again from the live bytes.
-- @usage kbl.memory.reset_peak()
function M.reset_peak() C.kbl_memory_reset_peak() end

return M
