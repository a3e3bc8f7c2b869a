-- kbl.autograd: backward, gradient mode (no_grad, enable_grad) and zero_grad.
-- The engine itself is in C (core/autograd.c); this is its Lua face.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C
local live, register = T.live, T.register

local M = {}

-- t:backward() for a one-element tensor; t:backward(grad) otherwise.
-- opts.retain_graph keeps the graph for a second backward.
function M.backward(t, grad, opts)
   if type(grad) == 'table' and not T.is_tensor(grad) then opts, grad = grad, nil end
   opts = opts or {}
   if C.kbl_backward(live(t), grad and live(grad) or nil, opts.retain_graph and 1 or 0) ~= 0 then
      error(ffi.string(C.kbl_last_error()), 2)
   end
end

function M.zero_grad(t) C.kbl_set_grad(live(t), nil) end

local function with_grad_mode(flag, fn, ...)
   local prev = C.kbl_set_grad_enabled(flag)
   local res = {pcall(fn, ...)}
   C.kbl_set_grad_enabled(prev)
   if not res[1] then error(res[2], 0) end
   return unpack(res, 2, table.maxn(res))
end

-- no_grad(fn, ...): runs fn with gradient recording off and returns its results
function M.no_grad(fn, ...) return with_grad_mode(0, fn, ...) end
function M.enable_grad(fn, ...) return with_grad_mode(1, fn, ...) end
function M.is_grad_enabled() return C.kbl_is_grad_enabled() ~= 0 end
function M.set_grad_enabled(flag) return C.kbl_set_grad_enabled(flag and 1 or 0) ~= 0 end

register('backward', M.backward)
register('zero_grad', M.zero_grad)

return M
