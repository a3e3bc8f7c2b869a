--- kbl.optim.clip: gradient clipping over a list of parameters (or parameter
-- groups), in place on their .grad, as torch.nn.utils.clip_grad_norm_ and
-- clip_grad_value_. Parameters without a gradient are skipped.
local kbl = require 'kbl'

local M = {}

local function grads_of(params, out)
   out = out or {}
   for _, p in ipairs(params) do
      if kbl.is_tensor(p) then
         local g = p.grad
         if g then out[#out + 1] = g end
      elseif type(p) == 'table' and p.params then
         grads_of(p.params, out)
      else
         error('optim.clip: expected a list of tensors or parameter groups', 3)
      end
   end
   return out
end

--- Scales the gradients so that their global norm is at most max_norm, in place.
-- @tparam table params a list of parameters (or groups); those without a gradient are skipped
-- @tparam number max_norm
-- @tparam[opt=2] number norm_type p (math.huge for the largest magnitude)
-- @treturn number the norm before clipping
-- @usage local norm = optim.clip_grad_norm(model:parameters(), 1.0)
function M.clip_grad_norm(params, max_norm, norm_type)
   norm_type = norm_type or 2
   if type(max_norm) ~= 'number' or max_norm < 0 then
      error('optim.clip_grad_norm: max_norm must be a non-negative number, got ' .. tostring(max_norm), 2)
   end
   local grads = grads_of(params)
   if #grads == 0 then return 0 end
   local total
   return kbl.no_grad(function()
      if norm_type == math.huge then
         total = 0
         for _, g in ipairs(grads) do total = math.max(total, g:abs():max():item()) end
      else
         total = 0
         for _, g in ipairs(grads) do total = total + g:norm(norm_type):item() ^ norm_type end
         total = total ^ (1 / norm_type)
      end
      local coef = max_norm / (total + 1e-6)
      if coef < 1 then
         for _, g in ipairs(grads) do g:copy_(g * coef) end
      end
      return total
   end)
end

--- Clamps every gradient element to [-value, value], in place.
-- @tparam table params
-- @tparam number value
-- @usage optim.clip_grad_value(model:parameters(), 0.5)
function M.clip_grad_value(params, value)
   if type(value) ~= 'number' or value < 0 then
      error('optim.clip_grad_value: value must be a non-negative number, got ' .. tostring(value), 2)
   end
   kbl.no_grad(function()
      for _, g in ipairs(grads_of(params)) do g:copy_(g:clamp(-value, value)) end
   end)
end

return M
