--- kbl.onnx.graph: builds an ONNX graph while an example input runs through a
-- model. A value is {name = its ONNX name, t = the kbl tensor it holds for the
-- example}, so each exporter knows the shapes it works on, and the graph's
-- output shapes are those kbl computed.
--
--   local g = graph.new()
--   local x = g:input('input', example)            -- batch dim 'N'
--   local y = g:node('Relu', {x.name})             -- -> an ONNX name
--   local w = g:const(tensor, 'fc.weight')         -- an initializer
--   g:output('output', value)
local ffi = require 'ffi'
local kbl = require 'kbl'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C

local Graph = {}
Graph.__index = Graph

local M = {}

function M.new()
   return setmetatable({nodes = {}, initializers = {}, inputs = {}, outputs = {}, used = {}, consts = {}},
      Graph)
end

-- A name not used yet in the graph, from a hint ('backbone.stage1.conv').
function Graph:fresh(hint)
   hint = (hint or 'v'):gsub('[^%w_%.%-/]', '_')
   if hint == '' then hint = 'v' end
   local name, i = hint, 1
   while self.used[name] do
      i = i + 1
      name = hint .. '_' .. i
   end
   self.used[name] = true
   return name
end

-- A tensor's bytes, little-endian and contiguous, as ONNX's raw_data.
local function raw_bytes(t)
   local c = t:detach():contiguous()
   local p = T.live(c)
   if p.device ~= 0 then c = c:cpu(); p = T.live(c) end
   return ffi.string(C.kbl_data_ptr(p), tonumber(C.kbl_numel(p)) * tonumber(C.kbl_dtype_size(p.dtype)))
end
M.raw_bytes = raw_bytes

-- An initializer holding a kbl tensor; returns its name.
function Graph:const(t, hint)
   local name = self:fresh(hint or 'const')
   self.initializers[#self.initializers + 1] = {name = name, dtype = t.dtype, dims = t:size(), raw = raw_bytes(t)}
   return name
end

-- A 1-D int64 initializer of the given values (shapes, axes), shared by equal lists.
function Graph:ints(list, hint)
   local key = 'i:' .. table.concat(list, ',')
   if not self.consts[key] then
      self.consts[key] = self:const(kbl.tensor(list, {dtype = 'int64'}), hint or 'shape')
   end
   return self.consts[key]
end

-- A float32 initializer of a number or a list (shape [n], or `shape` when given).
function Graph:floats(values, hint, shape)
   if type(values) == 'number' then values = {values} end
   local t = kbl.tensor(values, {dtype = 'float32'})
   if shape then t = t:reshape(shape) end
   return self:const(t, hint or 'c')
end

-- attrs: {name = {'int' | 'float' | 'ints' | 'floats' | 'string', value}}
local function attributes(attrs)
   local out = {}
   for name, a in pairs(attrs or {}) do out[#out + 1] = {name = name, type = a[1], value = a[2]} end
   table.sort(out, function(a, b) return a.name < b.name end)
   return out
end

-- Adds a node; returns the name of its (first) output, made from `hint`.
function Graph:node(op_type, inputs, attrs, hint)
   local out = self:fresh(hint or op_type)
   self.nodes[#self.nodes + 1] = {op_type = op_type, name = out, inputs = inputs, outputs = {out},
      attributes = attributes(attrs)}
   return out
end

-- The shape of a tensor with its batch dim named (dynamic).
local function shape_of(t)
   local s = t:size()
   if #s >= 1 then s[1] = 'N' end
   return s
end

function Graph:input(name, t)
   self.used[name] = true
   self.inputs[#self.inputs + 1] = {name = name, dtype = t.dtype, shape = shape_of(t)}
   return {name = name, t = t}
end

-- Marks a value as a graph output named `name` (through an Identity when the
-- value is a graph input or already has another name).
function Graph:output(name, v)
   local src = v.name
   if src ~= name then
      if self.used[name] then error('onnx: two values named ' .. name, 2) end
      self.used[name] = true
      self.nodes[#self.nodes + 1] = {op_type = 'Identity', name = name, inputs = {src}, outputs = {name},
         attributes = {}}
   end
   self.outputs[#self.outputs + 1] = {name = name, dtype = v.t.dtype, shape = shape_of(v.t)}
end

return M
