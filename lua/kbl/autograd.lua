--- kbl.autograd: backward, gradient mode (no_grad, enable_grad) and zero_grad.
-- The engine itself is in C (core/autograd.c); this is its Lua face.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C
local live, register = T.live, T.register

local M = {}

--- Computes the gradients of t with respect to the leaves that require grad,
-- accumulating them in their .grad, then frees the graph.
-- @tparam tensor t a one-element tensor (a loss), or any tensor with grad
-- @tparam[opt] tensor grad the gradient of t (needed unless t has one element)
-- @tparam[opt] table opts {retain_graph = false}: keep the graph for a second backward
-- @usage loss:backward(); print(w.grad)
function M.backward(t, grad, opts)
   if type(grad) == 'table' and not T.is_tensor(grad) then opts, grad = grad, nil end
   opts = opts or {}
   if C.kbl_backward(live(t), grad and live(grad) or nil, opts.retain_graph and 1 or 0) ~= 0 then
      error(ffi.string(C.kbl_last_error()), 2)
   end
end

--- Clears t.grad.
-- @tparam tensor t
-- @usage w:zero_grad()
function M.zero_grad(t) C.kbl_set_grad(live(t), nil) end

local function with_grad_mode(flag, fn, ...)
   local prev = C.kbl_set_grad_enabled(flag)
   local res = {pcall(fn, ...)}
   C.kbl_set_grad_enabled(prev)
   if not res[1] then error(res[2], 0) end
   return unpack(res, 2, table.maxn(res))
end

--- Runs fn with gradient recording off (evaluation, updates) and returns its results.
-- @tparam function fn
-- @param ... fn's arguments
-- @return fn's results
-- @usage local y = kbl.no_grad(function() return model(x) end)
function M.no_grad(fn, ...) return with_grad_mode(0, fn, ...) end
--- Runs fn with gradient recording on (inside no_grad) and returns its results.
-- @tparam function fn
-- @param ... fn's arguments
-- @return fn's results
-- @usage kbl.no_grad(function() kbl.enable_grad(step) end)
function M.enable_grad(fn, ...) return with_grad_mode(1, fn, ...) end
--- Whether ops record the graph now.
-- @treturn boolean
-- @usage print(kbl.is_grad_enabled())
function M.is_grad_enabled() return C.kbl_is_grad_enabled() ~= 0 end
--- Turns gradient recording on or off; returns the previous setting.
-- @tparam boolean flag
-- @treturn boolean the previous setting
-- @usage local was = kbl.set_grad_enabled(false)
function M.set_grad_enabled(flag) return C.kbl_set_grad_enabled(flag and 1 or 0) ~= 0 end

register('backward', M.backward)
register('zero_grad', M.zero_grad)

return M
