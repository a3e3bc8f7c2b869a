--- kbl.ops.reduce: reductions over one dim, a list of dims or all of them, with
-- keepdim (default false, as PyTorch). max/min/argmax/argmin return 1-based
-- indices, since every position seen from Lua counts from 1.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C
local wrap, live, register, cdim = T.wrap, T.live, T.register, T.cdim

local M = {}

-- A Lua dim (from 1; negative from the end) checked against ndim, as C's 0-based
-- one; errors name the dim as the caller wrote it. A 0-dim tensor takes 1 or -1.
-- level: where the error points, as error() counts (3, the caller's caller, by default).
local function check_dim(op, d, ndim, level)
   local c = cdim(d)
   local n = math.max(ndim, 1)
   if c >= n or c < -n then
      error(string.format('kbl: %s: dimension %d out of range for a tensor of %d dims (dims count from 1)',
         op, d, ndim), level or 3)
   end
   return c < 0 and c + n or c
end
--- A Lua dim checked against ndim, as C's 0-based one (for the op modules).
-- @local
M.check_dim = check_dim

local dims_buf = ffi.new('int[8]')
-- nil (all dims), a dim, or a list of dims -> count, int[8] of 0-based dims
local function dims_of(op, p, dims)
   if dims == nil then return 0, nil end
   if type(dims) == 'number' then dims = {dims} end
   if type(dims) ~= 'table' then error('kbl: ' .. op .. ': dims must be a number or a list, got ' .. type(dims), 3) end
   if #dims == 0 then return 0, nil end
   if #dims > 8 then error('kbl: ' .. op .. ': at most 8 dims', 3) end
   local seen = {}
   for i = 1, #dims do
      local c = check_dim(op, dims[i], p.ndim, 4)
      if seen[c] and p.ndim > 0 then error(string.format('kbl: %s: dimension %d listed twice', op, c + 1), 3) end
      seen[c] = true
      dims_buf[i - 1] = c
   end
   return #dims, dims_buf
end

local function kd(b) return b and 1 or 0 end

--- The sum over all dims, one dim or a list of dims.
-- @tparam tensor t
-- @param[opt] dims nil (all), a dim from 1, or a list of dims
-- @tparam[opt=false] boolean keepdim keep reduced dims with size 1
-- @treturn tensor
-- @usage local total = x:sum(); local per_row = x:sum(2)
function M.sum(t, dims, keepdim)
   local p = live(t)
   local n, d = dims_of('sum', p, dims)
   return wrap(C.kbl_sum(p, n, d, kd(keepdim)))
end
--- The mean over all dims, one dim or a list of dims.
-- @tparam tensor t
-- @param[opt] dims nil (all), a dim from 1, or a list of dims
-- @tparam[opt=false] boolean keepdim
-- @treturn tensor
-- @usage local m = x:mean(1)
function M.mean(t, dims, keepdim)
   local p = live(t)
   local n, d = dims_of('mean', p, dims)
   return wrap(C.kbl_mean(p, n, d, kd(keepdim)))
end

--- The variance.
-- @tparam tensor t
-- @param[opt] dims nil (all), a dim or a list of dims
-- @tparam[opt=false] boolean keepdim
-- @tparam[opt=1] number correction 1 the unbiased estimate, 0 the population one
-- @treturn tensor
-- @usage local v = x:var(1)
function M.var(t, dims, keepdim, correction)
   local p = live(t)
   local n, d = dims_of('var', p, dims)
   return wrap(C.kbl_var(p, n, d, correction or 1, kd(keepdim)))
end
--- The standard deviation (the square root of var).
-- @tparam tensor t
-- @param[opt] dims nil (all), a dim or a list of dims
-- @tparam[opt=false] boolean keepdim
-- @tparam[opt=1] number correction
-- @treturn tensor
-- @usage local s = x:std()
function M.std(t, dims, keepdim, correction)
   local p = live(t)
   local n, d = dims_of('std', p, dims)
   return wrap(C.kbl_std(p, n, d, correction or 1, kd(keepdim)))
end
--- log(sum(exp(t))) over dims, computed without overflow.
-- @tparam tensor t
-- @param[opt] dims nil (all), a dim or a list of dims
-- @tparam[opt=false] boolean keepdim
-- @treturn tensor
-- @usage local lse = logits:logsumexp(2)
function M.logsumexp(t, dims, keepdim)
   local p = live(t)
   local n, d = dims_of('logsumexp', p, dims)
   return wrap(C.kbl_logsumexp(p, n, d, kd(keepdim)))
end
--- The p-norm over dims.
-- @tparam tensor t
-- @tparam[opt=2] number pn p (math.huge for the largest absolute value)
-- @param[opt] dims nil (all), a dim or a list of dims
-- @tparam[opt=false] boolean keepdim
-- @treturn tensor
-- @usage local n = g:norm()
function M.norm(t, pn, dims, keepdim)
   local p = live(t)
   local n, d = dims_of('norm', p, dims)
   return wrap(C.kbl_norm(p, pn or 2, n, d, kd(keepdim)))
end

local AFFINE = C.KBL_AFFINE
local function one_based(idx) return wrap(C.kbl_unary(AFFINE, idx, 1, 1)) end

local idx_out = ffi.new('kbl_tensor *[1]')
-- (reached by a tail call from max/min, so level 3 of an error is their caller)
local function extreme(op, cfn, t, dim, keepdim)
   local p = live(t)
   local all = dim == nil
   local v = wrap(cfn(p, all and 0 or check_dim(op, dim, p.ndim), all and 1 or 0, kd(keepdim), idx_out))
   local raw = idx_out[0]
   local idx = one_based(raw)
   C.kbl_tensor_release(raw)
   return v, idx
end

--- The largest value: max(t) a 0-dim tensor (and the flat position of the maximum, from 1);
-- max(t, dim) the values and their indices along dim, from 1.
-- @tparam tensor t
-- @tparam[opt] number dim
-- @tparam[opt=false] boolean keepdim
-- @treturn tensor values
-- @treturn tensor indices (int64, from 1)
-- @usage local values, indices = x:max(2)
function M.max(t, dim, keepdim)
   if T.is_tensor(dim) then return require('kbl.ops.elementwise').maximum(t, dim) end
   return extreme('max', C.kbl_max, t, dim, keepdim)
end
--- The smallest value; as max.
-- @tparam tensor t
-- @tparam[opt] number dim
-- @tparam[opt=false] boolean keepdim
-- @treturn tensor values
-- @treturn tensor indices (int64, from 1)
-- @usage local values, indices = x:min(2)
function M.min(t, dim, keepdim)
   if T.is_tensor(dim) then return require('kbl.ops.elementwise').minimum(t, dim) end
   return extreme('min', C.kbl_min, t, dim, keepdim)
end

local function arg(op, cfn, t, dim, keepdim)
   local p = live(t)
   local all = dim == nil
   local raw = cfn(p, all and 0 or check_dim(op, dim, p.ndim), all and 1 or 0, kd(keepdim))
   if raw == nil then error(ffi.string(C.kbl_last_error()), 3) end
   local idx = one_based(raw)
   C.kbl_tensor_release(raw)
   return idx
end
--- The positions of the maxima along a dim (or of the flat tensor), from 1.
-- @tparam tensor t
-- @tparam[opt] number dim
-- @tparam[opt=false] boolean keepdim
-- @treturn tensor int64
-- @usage local predicted = logits:argmax(2)
function M.argmax(t, dim, keepdim) return arg('argmax', C.kbl_argmax, t, dim, keepdim) end
--- The positions of the minima along a dim (or of the flat tensor), from 1.
-- @tparam tensor t
-- @tparam[opt] number dim
-- @tparam[opt=false] boolean keepdim
-- @treturn tensor int64
-- @usage local i = d:argmin(2)
function M.argmin(t, dim, keepdim) return arg('argmin', C.kbl_argmin, t, dim, keepdim) end

for name, fn in pairs(M) do
   if name ~= 'check_dim' then register(name, fn) end
end

return M
