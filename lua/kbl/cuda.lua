--- kbl.cuda: the optional CUDA backend, present on every build. libkbl loads
-- libkbl_cuda.so the first time one of these is called (or a tensor moves to
-- 'cuda'); without it, a driver or a device, is_available() is false and
-- unavailable_reason() says why. Tensors move with t:to('cuda') / t:cuda(), and
-- ops run where their inputs are.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local C = lib.C

local M = {}

--- Whether a CUDA device can be used (libkbl_cuda.so, a driver and a device); loads the backend.
-- @treturn boolean
-- @usage if kbl.cuda.is_available() then x = x:cuda() end
function M.is_available() return C.kbl_cuda_is_available() ~= 0 end

--- Why there is no CUDA device ('' when there is one).
-- @treturn string
-- @usage print(kbl.cuda.unavailable_reason())
function M.unavailable_reason() return ffi.string(C.kbl_cuda_unavailable_reason()) end

--- The number of CUDA devices (0 without the backend or a device).
-- @treturn number
-- @usage print(kbl.cuda.device_count())
function M.device_count() return C.kbl_cuda_device_count() end

--- The device's name, compute capability and memory ('' without a device).
-- @treturn string
-- @usage print(kbl.cuda.device_name())
function M.device_name() return ffi.string(C.kbl_cuda_device_name()) end

--- Waits until the device has finished the work queued so far (timings need it).
-- @usage kbl.cuda.synchronize()
function M.synchronize()
   if C.kbl_cuda_synchronize() ~= 0 then error(ffi.string(C.kbl_last_error()), 2) end
end

-- The caching allocator's counts: bytes held by live tensors, their peak, bytes
-- kept for reuse, calls that reached cudaMalloc, and the device's memory.
-- All zero without a device.
local stats = ffi.new('int64_t[5]')
--- The caching allocator's counts; all zero without a device.
-- @treturn table {live_bytes, peak_bytes, cached_bytes, allocations (calls that reached cudaMalloc), total_bytes}
-- @usage print(kbl.cuda.memory_stats().peak_bytes)
function M.memory_stats()
   C.kbl_cuda_memory_stats(stats)
   return {
      live_bytes = tonumber(stats[0]), peak_bytes = tonumber(stats[1]), cached_bytes = tonumber(stats[2]),
      allocations = tonumber(stats[3]), total_bytes = tonumber(stats[4]),
   }
end

--- Gives the cached (free) device blocks back to the driver.
-- @usage kbl.cuda.empty_cache()
function M.empty_cache() C.kbl_cuda_empty_cache() end
--- Starts the peak count again from the live bytes.
-- @usage kbl.cuda.reset_peak()
function M.reset_peak() C.kbl_cuda_reset_peak() end

return M
