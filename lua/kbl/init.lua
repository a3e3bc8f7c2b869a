--- kbl: tensors, ops and autograd over libkbl. `local kbl = require 'kbl'`.
-- Every op is both a function (kbl.relu(x)) and a method (x:relu()).
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local memory = require 'kbl.memory'
local C = lib.C

local kbl = {}

local modules = {
   require 'kbl.ops.creation', require 'kbl.ops.views', require 'kbl.ops.elementwise',
   require 'kbl.ops.reduce', require 'kbl.ops.nn', require 'kbl.ops.index', require 'kbl.autograd',
   require 'kbl.ops.conv',
}
for _, m in ipairs(modules) do
   for name, fn in pairs(m) do kbl[name] = fn end
end
for name, fn in pairs(T.methods) do
   if kbl[name] == nil then kbl[name] = fn end
end

kbl.is_tensor = T.is_tensor
kbl.scope = memory.scope
kbl.keep = memory.keep
kbl.memory = memory
kbl.lib = lib
kbl.save, kbl.load = require('kbl.io.safetensors').save, require('kbl.io.safetensors').load
--- A `kbl run` directory's model, built from its config.lua with the run's final
-- weights (or its newest valid checkpoint's), in eval mode.
-- @tparam string dir the run directory
-- @tparam[opt] table opts {weights = another safetensors file}
-- @return model, config (the resolved table), trainer (kbl.fit, for evaluate and predict)
-- @usage local model, config = kbl.load_run('runs/mnist/20261206-0900')
function kbl.load_run(dir, opts) return require('kbl.records.run').load_run(dir, opts) end
--- Runs fn while the profiler records every op, backward node, optimizer update and
-- data stage; prints the ops by time and whether data, ops or Lua overhead bound it.
-- @tparam function fn what to profile
-- @tparam[opt] table opts {path = a Chrome trace to write, print = false: no table, top = rows shown}
-- @return the profile (p.rows, p.bound, p.data, p.compute, p.other, p:text(), p:write_trace(path)), then fn's results
-- @usage local p = kbl.profile(function() trainer:fit() end, {path = 'trace.json'})
function kbl.profile(fn, opts) return require('kbl.profile').profile(fn, opts) end

--- kbl's version.
-- @treturn string '0.1.0'
-- @usage print(kbl.version())
function kbl.version() return ffi.string(C.kbl_version()) end
--- The CPU kernel library (oneDNN): its version, the instruction set its JIT uses here, its math mode.
-- @treturn string
-- @usage print(kbl.blas_info())
function kbl.blas_info() return ffi.string(C.kbl_blas_info()) end
--- Sets the thread count of kbl's kernels and oneDNN (one count governs both).
-- @tparam number n
-- @usage kbl.set_num_threads(4)
function kbl.set_num_threads(n) C.kbl_set_num_threads(n) end
--- The thread count of kbl's kernels.
-- @treturn number
-- @usage print(kbl.get_num_threads())
function kbl.get_num_threads() return C.kbl_get_num_threads() end

-- kbl.cuda: the optional CUDA backend (is_available, memory_stats, ...).
kbl.cuda = require 'kbl.cuda'
-- kbl.dist: data-parallel training over processes (MPI), one process outside mpirun.
kbl.dist = require 'kbl.dist'

return kbl
