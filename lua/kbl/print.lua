--- kbl.print: Torch7-style printing: the values (a matrix at a time for more
-- dims, slices headed "(i,j,.,.) ="), then a line with the dtype and size.
-- Large tensors show their first and last three items per dim, as PyTorch; so
-- does a 1-D tensor longer than a screenful (it prints one item a line).
local M = {}

local EDGE, SUMMARIZE_OVER, LONGEST_COLUMN = 3, 1000, 20

local function fmt_for(values, is_int)
   if is_int then
      local w = 1
      for _, v in ipairs(values) do w = math.max(w, #string.format('%d', v)) end
      return function(v) return string.format('%' .. w .. 'd', v) end
   end
   local maxabs, minabs, allint = 0, math.huge, true
   for _, v in ipairs(values) do
      local a = math.abs(v)
      if a == a and a ~= math.huge then
         maxabs = math.max(maxabs, a)
         if a > 0 then minabs = math.min(minabs, a) end
         if v % 1 ~= 0 then allint = false end
      end
   end
   local f
   if allint and maxabs < 1e8 then f = '%.0f'
   elseif maxabs >= 1e5 or (minabs < 1e-4 and minabs ~= math.huge) then f = '%.4e'
   else f = '%.4f' end
   local w = 1
   for _, v in ipairs(values) do w = math.max(w, #string.format(f, v)) end
   return function(v) return string.format('%' .. w .. 's', string.format(f, v)) end
end

-- positions to show along a dim of size n
local function shown(n, summarize)
   local idx = {}
   if summarize and n > 2 * EDGE then
      for i = 1, EDGE do idx[#idx + 1] = i end
      idx[#idx + 1] = false
      for i = n - EDGE + 1, n do idx[#idx + 1] = i end
   else
      for i = 1, n do idx[i] = i end
   end
   return idx
end

function M.format(t)
   if t:is_freed() then return '[kbl tensor (freed)]' end
   local size = t:size()
   local dtype = t.dtype
   local is_int = dtype ~= 'float32' and dtype ~= 'float64'
   local footer = string.format('[kbl.%s of size %s%s%s]', dtype, #size > 0 and table.concat(size, 'x') or 'scalar',
      t.device ~= 'cpu' and (' on ' .. t.device) or '',
      t.grad_fn and (', grad_fn=' .. t.grad_fn) or (t.requires_grad and ', requires_grad' or ''))
   local n = t:numel()
   if n == 0 then return '[empty]\n' .. footer end
   if #size == 0 then
      local v = t:item()
      return fmt_for({v}, is_int)(v) .. '\n' .. footer
   end
   local summarize = n > SUMMARIZE_OVER or (#size == 1 and n > LONGEST_COLUMN)
   local list = t:tolist()
   -- collect the shown values to choose one format
   local values = {}
   local function collect(x, d)
      if d > #size then values[#values + 1] = x return end
      for _, i in ipairs(shown(size[d], summarize)) do if i then collect(x[i], d + 1) end end
   end
   collect(list, 1)
   local f = fmt_for(values, is_int)
   local out = {}
   local function matrix(m)
      if #size == 1 then
         for _, i in ipairs(shown(size[1], summarize)) do out[#out + 1] = i and ' ' .. f(m[i]) or ' ...' end
         return
      end
      for _, i in ipairs(shown(size[#size - 1], summarize)) do
         if not i then out[#out + 1] = ' ...' else
            local row = {}
            for _, j in ipairs(shown(size[#size], summarize)) do row[#row + 1] = j and f(m[i][j]) or '...' end
            out[#out + 1] = ' ' .. table.concat(row, ' ')
         end
      end
   end
   local function slices(x, d, prefix)
      if d == #size - 1 or #size == 1 then
         if prefix then out[#out + 1] = '(' .. prefix .. ',.,.) =' end
         matrix(x)
         if prefix then out[#out + 1] = '' end
         return
      end
      for _, i in ipairs(shown(size[d], summarize)) do
         if not i then out[#out + 1] = '...\n' else
            slices(x[i], d + 1, prefix and (prefix .. ',' .. i) or tostring(i))
         end
      end
   end
   slices(list, 1, nil)
   out[#out + 1] = footer
   return table.concat(out, '\n')
end

return M
