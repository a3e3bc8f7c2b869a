-- kbl: tensors, ops and autograd over libkbl. `local kbl = require 'kbl'`.
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
-- kbl.load_run(dir) -> model, config: a `kbl run` directory's model with its weights
function kbl.load_run(dir, opts) return require('kbl.records.run').load_run(dir, opts) end

function kbl.version() return ffi.string(C.kbl_version()) end
function kbl.blas_info() return ffi.string(C.kbl_blas_info()) end
function kbl.set_num_threads(n) C.kbl_set_num_threads(n) end
function kbl.get_num_threads() return C.kbl_get_num_threads() end

-- kbl.cuda: the optional CUDA backend (is_available, memory_stats, ...).
kbl.cuda = require 'kbl.cuda'

return kbl
