--- kbl.data.source: a source is named splits (train, validation, test) over
-- in-memory rows, and meta:
--   meta.num_classes, meta.class_names (class_names[label] for labels 1..C),
--   meta.shapes = {x = {1, 28, 28}}, meta.dtypes = {x = 'float32', y = 'int64'},
--   meta.sizes = {train = n, validation = n, test = n}
-- src:split(name) starts a pipeline; src:size(name) counts its elements.
local lib = require 'kbl.lib'
local B = require 'kbl.data.base'
local Pipeline = require 'kbl.data.pipeline'

local Source = {}
Source.__index = Source

local ORDER = {train = 1, validation = 2, test = 3}

--- Makes a source from splits of bases; shapes, dtypes and sizes are filled in from the splits.
-- @tparam table o {name =, splits = {train = base, ...}, meta = {...}}
-- @treturn table the source
-- @usage local src = data.Source.new{name = 'mine', splits = {train = base}}
function Source.new(o)
   local self = setmetatable({name = o.name or 'source', bases = o.splits}, Source)
   local meta = o.meta or {}
   meta.sizes = meta.sizes or {}
   local any
   for name, base in pairs(o.splits) do
      meta.sizes[name] = base.n
      any = any or base
   end
   for _, name in ipairs{'train', 'validation', 'test'} do meta.sizes[name] = meta.sizes[name] or 0 end
   if any and any.x then
      local xs = any.x:size()
      table.remove(xs, 1)
      meta.shapes = meta.shapes or {x = xs}
      if not meta.shapes.y and any.y then
         local ys = any.y:size()
         table.remove(ys, 1)
         meta.shapes.y = ys
      end
      meta.dtypes = meta.dtypes or {}
      meta.dtypes.x = meta.dtypes.x or lib.dtype_names[any.x_dtype]
      if any.y then meta.dtypes.y = meta.dtypes.y or any.y.dtype end
   end
   self.meta = meta
   return self
end

--- The split names, train, validation and test first.
-- @treturn table
-- @usage print(table.concat(src:splits(), ', '))
function Source:splits()
   local names = {}
   for name in pairs(self.bases) do names[#names + 1] = name end
   table.sort(names, function(a, b)
      local oa, ob = ORDER[a] or 9, ORDER[b] or 9
      if oa ~= ob then return oa < ob end
      return a < b
   end)
   return names
end

local function base_of(self, name, level)
   local base = self.bases[name]
   if not base then
      error(string.format("data: %s has no split '%s' (it has: %s)", self.name, tostring(name),
         table.concat(self:splits(), ', ')), level + 1)
   end
   return base
end

--- The number of elements of a split.
-- @tparam[opt='train'] string name
-- @treturn number
-- @usage print(src:size('test'))
function Source:size(name) return base_of(self, name or 'train', 2).n end

--- Starts a pipeline over a split.
-- @tparam string name 'train', 'validation', 'test', ...
-- @treturn table a pipeline
-- @usage local p = src:split('train'):shuffle{seed = 1}:batch(32)
function Source:split(name)
   return Pipeline.from_base(self, self.name .. '/' .. name, base_of(self, name, 2))
end

function Source:__tostring()
   local parts = {}
   for _, n in ipairs(self:splits()) do parts[#parts + 1] = n .. ' ' .. self.bases[n].n end
   return 'Source ' .. self.name .. ' (' .. table.concat(parts, ', ') .. ')'
end

--- Splits {train =, test =} of bases, with `validation` rows carved from the end of train.
-- @local
function Source.carve(splits, validation, name)
   validation = validation or 0
   Pipeline.check_count(validation, 'validation', true)
   local train = splits.train
   if validation > 0 then
      if not train or validation >= train.n then
         error(string.format('data: %s: validation = %d leaves no training rows (train has %d)', name, validation,
            train and train.n or 0), 3)
      end
      local n = train.n - validation
      local function part(t, start, len) return t and t:narrow(1, start, len) or nil end
      splits.validation = B.new{x = part(train.x, n + 1, validation), y = part(train.y, n + 1, validation),
         x_dtype = train.x_dtype, x_scale = train.x_scale, name = name .. '/validation'}
      splits.train = B.new{x = part(train.x, 1, n), y = part(train.y, 1, n), x_dtype = train.x_dtype,
         x_scale = train.x_scale, name = name .. '/train'}
   end
   return splits
end

return Source
