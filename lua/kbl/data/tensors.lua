--- kbl.data.tensors: a source over tensors or Lua tables already in memory.
--
--   data.tensors{train = {x = x, y = y}, test = {x = ..., y = ...}, meta = {num_classes = 3}}
--
-- x is a tensor or a nested table (made float32); y a tensor or a list. Labels
-- given from Lua already count from 1: integer y must lie in 1..num_classes
-- (num_classes defaults to the largest label). Float y are targets, unchanged.
local kbl = require 'kbl'
local B = require 'kbl.data.base'
local Source = require 'kbl.data.source'

local function as_tensor(v, what, dtype)
   if kbl.is_tensor(v) then return v end
   if type(v) == 'table' then return kbl.tensor(v, {dtype = dtype}) end
   error('data.tensors: ' .. what .. ' must be a tensor or a table, got ' .. type(v), 4)
end

local function all_whole(list)
   for _, v in ipairs(list) do if type(v) ~= 'number' or v % 1 ~= 0 then return false end end
   return true
end

--- A source over tensors or Lua tables in memory. Integer y are labels 1..num_classes;
-- float y are targets, unchanged. Also data.tables.
-- @tparam table o {train = {x =, y =}, validation = {...}, test = {...}, meta = {num_classes =, class_names =}}
-- @treturn table a source
-- @usage local src = data.tensors{train = {x = kbl.randn(100, 4), y = kbl.randint(1, 4, {100})}}
return function(o)
   if type(o) ~= 'table' then error('data.tensors: expects {train = {x =, y =}, ...}', 2) end
   local meta = o.meta or {}
   local splits, top = {}, 0
   local labels = false
   for name, s in pairs(o) do
      if name ~= 'meta' and name ~= 'name' then
         if type(s) ~= 'table' or s.x == nil then error("data.tensors: split '" .. name .. "' needs x", 2) end
         local x = as_tensor(s.x, name .. '.x', 'float32')
         local y
         if s.y ~= nil then
            local ydtype = type(s.y) == 'table' and not kbl.is_tensor(s.y) and all_whole(s.y) and 'int64' or 'float32'
            y = as_tensor(s.y, name .. '.y', ydtype)
            if y.dtype == 'int64' or y.dtype == 'int32' then
               labels = true
               if y:numel() > 0 then
                  local lo, hi = y:min():item(), y:max():item()
                  if lo < 1 then
                     error(string.format("data.tensors: split '%s': label %d is below 1 (labels count from 1)",
                        name, lo), 2)
                  end
                  if meta.num_classes and hi > meta.num_classes then
                     error(string.format("data.tensors: split '%s': label %d is above num_classes = %d", name, hi,
                        meta.num_classes), 2)
                  end
                  top = math.max(top, hi)
               end
            end
         end
         splits[name] = B.new{x = x, y = y, name = (o.name or 'tensors') .. '/' .. name}
      end
   end
   if labels and not meta.num_classes then meta.num_classes = top end
   return Source.new{name = o.name or 'tensors', splits = splits, meta = meta}
end
