--- blocks.summary: how a block describes itself: describe() (its type and the
-- options that differ from the defaults), tostring (the tree of blocks, in the
-- style of Torch7's nn) and summary() (each block's output shape and parameter
-- count, then the totals). Installed into blocks.Block.
local M = {}

local function shape_str(s) return '[' .. table.concat(s, ', ') .. ']' end

function M.install(Block)

   local function count(t) return t:numel() end

   --- Short text of the options that differ from the type's defaults (for tostring).
   -- @treturn string
   -- @usage print(m:describe())
   function Block:describe()
      local cls = getmetatable(self)
      local parts = {}
      for i, k in ipairs(cls.positional) do
         local v = self.opts[k]
         if v ~= nil and v ~= cls.options[k] and type(v) ~= 'table' and type(v) ~= 'function' then
            parts[#parts + 1] = type(v) == 'string' and ("'" .. v .. "'") or tostring(v)
         end
         if i == 1 and type(v) == 'table' and #v > 0 and type(v[1]) == 'number' then
            parts[#parts + 1] = '{' .. table.concat(v, ', ') .. '}'
         end
      end
      local positional = {}
      for _, k in ipairs(cls.positional) do positional[k] = true end
      for _, k in ipairs(cls.option_names) do
         local v, d = self.opts[k], cls.options[k]
         if d == Block.NONE then d = nil end
         if not positional[k] and k ~= 'name' and v ~= d and (type(v) == 'string' or type(v) == 'number'
            or type(v) == 'boolean') then
            parts[#parts + 1] = k .. ' = ' .. (type(v) == 'string' and ("'" .. v .. "'") or tostring(v))
         end
      end
      return self.type_name .. (#parts > 0 and ('{' .. table.concat(parts, ', ') .. '}') or '')
   end

   function Block.__tostring(self)
      local lines = {}
      local function rec(b, indent, label)
         local head = indent .. (label and ('(' .. label .. '): ') or '') .. b:describe()
         if #b._children == 0 then
            lines[#lines + 1] = head
            return
         end
         lines[#lines + 1] = head .. ' {'
         for _, c in ipairs(b._children) do rec(c[2], indent .. '  ', c[1]) end
         lines[#lines + 1] = indent .. '}'
      end
      rec(self, '', nil)
      return table.concat(lines, '\n')
   end

   local function group(n)
      local s = tostring(math.floor(n))
      return (s:reverse():gsub('(%d%d%d)', '%1,'):reverse():gsub('^,', ''))
   end

   --- A table of every block (indented by depth) with its type, its output shape at the last call
   -- and its parameter count, then the totals. Returns the text and prints it (unless opts.print == false).
   -- @tparam[opt] table opts {print = true}
   -- @treturn string
   -- @usage local text = m:summary{print = false}
   function Block:summary(opts)
      local rows = {{'Block (type)', 'Output shape', 'Params'}}
      self:walk(function(b, prefix)
         local depth = prefix == '' and 0 or select(2, prefix:gsub('%.', '')) + 1
         local n = 0
         b:walk(function(d) for _, e in ipairs(d._params) do n = n + count(e.tensor) end end)
         local label = prefix == '' and (self.name or 'model') or prefix:match('[^.]+$')
         local built = b._built or b.build == Block.build
         rows[#rows + 1] = {string.rep('  ', depth) .. label .. ' (' .. b.type_name .. ')',
            b._out_shape and shape_str(b._out_shape) or (built and '-' or 'not built'), group(n)}
      end)
      local total, trainable = 0, 0
      for _, r in ipairs(self:_entries('_params')) do
         local n = count(r[2].tensor)
         total = total + n
         if not r[2].frozen then trainable = trainable + n end
      end
      local w = {0, 0, 0}
      for _, r in ipairs(rows) do for i = 1, 3 do w[i] = math.max(w[i], #r[i]) end end
      local out = {}
      local rule = string.rep('-', w[1] + w[2] + w[3] + 4)
      for i, r in ipairs(rows) do
         out[#out + 1] = r[1] .. string.rep(' ', w[1] - #r[1] + 2) .. r[2] .. string.rep(' ', w[2] - #r[2] + 2)
            .. string.rep(' ', w[3] - #r[3]) .. r[3]
         if i == 1 then out[#out + 1] = rule end
      end
      out[#out + 1] = rule
      out[#out + 1] = 'Total params: ' .. group(total)
      out[#out + 1] = 'Trainable params: ' .. group(trainable)
      out[#out + 1] = 'Non-trainable params: ' .. group(total - trainable)
      local text = table.concat(out, '\n')
      if not (opts and opts.print == false) then print(text) end
      return text, {total = total, trainable = trainable, non_trainable = total - trainable}
   end
end

return M
