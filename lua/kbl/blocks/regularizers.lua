--- blocks.regularizers: penalties on parameters that m:regularization_loss()
-- sums into a 0-dim tensor for the training loss, as Keras's: l1(f) is
-- f * sum(|w|), l2(f) is f * sum(w^2) (no 1/2). A regularizer is named by a
-- string ('l2', factor 0.01), a table ({'l2', 1e-4} or {l1 = 1e-5, l2 = 1e-4})
-- or a function of the parameter returning a 0-dim tensor.
local M = {}

function M.l1(f)
   f = f or 0.01
   return function(w) return w:abs():sum() * f end
end

function M.l2(f)
   f = f or 0.01
   return function(w) return w:square():sum() * f end
end

function M.l1_l2(o)
   local a, b = o.l1 or 0, o.l2 or 0
   return function(w)
      local r
      if a ~= 0 then r = w:abs():sum() * a end
      if b ~= 0 then
         local s = w:square():sum() * b
         r = r and r + s or s
      end
      return r or w:sum() * 0
   end
end

-- The function for a regularizer spec (nil stays nil).
function M.get(spec)
   if spec == nil or spec == false then return nil end
   if type(spec) == 'function' then return spec end
   if type(spec) == 'string' and (spec == 'l1' or spec == 'l2') then return M[spec]() end
   if type(spec) == 'table' then
      if spec[1] == 'l1' or spec[1] == 'l2' then return M[spec[1]](spec[2] or spec.factor) end
      if spec.l1 or spec.l2 then return M.l1_l2(spec) end
   end
   error("blocks: a regularizer is 'l1', 'l2', {'l2', factor}, {l1 = a, l2 = b} or a function, got "
      .. tostring(spec), 3)
end

return M
