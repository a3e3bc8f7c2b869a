-- kbl.ops.reduce: reductions over one dim, a list of dims or all of them, with
-- keepdim (default false, as PyTorch). max/min/argmax/argmin return 1-based
-- indices, since every position seen from Lua counts from 1.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C
local wrap, live, register, cdim = T.wrap, T.live, T.register, T.cdim

local M = {}

local dims_buf = ffi.new('int[8]')
local function dims_of(dims)
   if dims == nil then return 0, nil end
   if type(dims) == 'number' then dims_buf[0] = cdim(dims); return 1, dims_buf end
   if #dims == 0 then return 0, nil end
   for i = 1, #dims do dims_buf[i - 1] = cdim(dims[i]) end
   return #dims, dims_buf
end

local function kd(b) return b and 1 or 0 end

function M.sum(t, dims, keepdim) local n, d = dims_of(dims); return wrap(C.kbl_sum(live(t), n, d, kd(keepdim))) end
function M.mean(t, dims, keepdim) local n, d = dims_of(dims); return wrap(C.kbl_mean(live(t), n, d, kd(keepdim))) end

-- var(dims, keepdim, correction=1): correction 1 is the unbiased estimate, 0 the population one
function M.var(t, dims, keepdim, correction)
   local n, d = dims_of(dims)
   return wrap(C.kbl_var(live(t), n, d, correction or 1, kd(keepdim)))
end
function M.std(t, dims, keepdim, correction)
   local n, d = dims_of(dims)
   return wrap(C.kbl_std(live(t), n, d, correction or 1, kd(keepdim)))
end
function M.logsumexp(t, dims, keepdim)
   local n, d = dims_of(dims)
   return wrap(C.kbl_logsumexp(live(t), n, d, kd(keepdim)))
end
-- norm(p=2, dims, keepdim); p may be math.huge
function M.norm(t, p, dims, keepdim)
   local n, d = dims_of(dims)
   return wrap(C.kbl_norm(live(t), p or 2, n, d, kd(keepdim)))
end

local AFFINE = C.KBL_AFFINE
local function one_based(idx) return wrap(C.kbl_unary(AFFINE, idx, 1, 1)) end

local idx_out = ffi.new('kbl_tensor *[1]')
local function extreme(cfn, t, dim, keepdim)
   local p = live(t)
   local all = dim == nil
   local v = wrap(cfn(p, all and 0 or cdim(dim), all and 1 or 0, kd(keepdim), idx_out))
   local raw = idx_out[0]
   local idx = one_based(raw)
   C.kbl_tensor_release(raw)
   if all then return v, idx end
   return v, idx
end

-- max(t) -> 0-dim tensor (and the flat 1-based position); max(t, dim) -> values, indices
function M.max(t, dim, keepdim)
   if T.is_tensor(dim) then return require('kbl.ops.elementwise').maximum(t, dim) end
   return extreme(C.kbl_max, t, dim, keepdim)
end
function M.min(t, dim, keepdim)
   if T.is_tensor(dim) then return require('kbl.ops.elementwise').minimum(t, dim) end
   return extreme(C.kbl_min, t, dim, keepdim)
end

local function arg(cfn, t, dim, keepdim)
   local all = dim == nil
   local raw = cfn(live(t), all and 0 or cdim(dim), all and 1 or 0, kd(keepdim))
   if raw == nil then error(ffi.string(C.kbl_last_error()), 3) end
   local idx = one_based(raw)
   C.kbl_tensor_release(raw)
   return idx
end
function M.argmax(t, dim, keepdim) return arg(C.kbl_argmax, t, dim, keepdim) end
function M.argmin(t, dim, keepdim) return arg(C.kbl_argmin, t, dim, keepdim) end

for name, fn in pairs(M) do register(name, fn) end

return M
