--- kbl.onnx.format: ONNX's ModelProto as a Lua table, to bytes and back, for
-- the messages and fields kbl writes (field numbers from onnx/onnx.proto,
-- IR version 8). Reading is for kbl's own files: `kbl predict model.onnx`.
--
--   model = {ir_version =, opsets = {{domain = '', version = 17}}, producer_name =,
--            producer_version =, doc_string =, metadata = {{key, value}, ...}, graph = {
--     name =, nodes = {{op_type =, name =, inputs = {...}, outputs = {...},
--                       attributes = {{name =, type = 'int'|'float'|'ints'|'floats'|'string', value =}}}},
--     initializers = {{name =, dtype = 'float32', dims = {...}, raw = bytes}},
--     inputs = {{name =, dtype =, shape = {'N', 1, 28, 28}}}, outputs = {...}}}
local wire = require 'kbl.onnx.wire'

local M = {}

-- TensorProto.DataType
local DTYPES = {float32 = 1, uint8 = 2, int8 = 3, int32 = 6, int64 = 7, bool = 9, float64 = 11}
local DTYPE_NAMES = {}
for k, v in pairs(DTYPES) do DTYPE_NAMES[v] = k end
M.DTYPES, M.DTYPE_NAMES = DTYPES, DTYPE_NAMES

-- AttributeProto.AttributeType
local ATTR = {float = 1, int = 2, string = 3, tensor = 4, floats = 6, ints = 7}
local ATTR_NAMES = {}
for k, v in pairs(ATTR) do ATTR_NAMES[v] = k end

local function dtype_code(dt)
   local c = DTYPES[dt]
   if not c then error('onnx: no ONNX data type for ' .. tostring(dt), 3) end
   return c
end

local function tensor_msg(t)
   local w = wire.writer()
   for _, d in ipairs(t.dims) do w:varint(1, d) end          -- dims
   w:varint(2, dtype_code(t.dtype))                          -- data_type
   w:bytes(8, t.name)                                        -- name
   w:bytes(9, t.raw)                                         -- raw_data (little-endian)
   return w
end

local function attribute_msg(a)
   local w = wire.writer():bytes(1, a.name)
   local kind = ATTR[a.type] or error('onnx: attribute ' .. a.name .. ' has no type', 3)
   w:varint(20, kind)                                        -- type
   if a.type == 'float' then w:float(2, a.value)
   elseif a.type == 'int' then w:varint(3, a.value)
   elseif a.type == 'string' then w:bytes(4, a.value)
   elseif a.type == 'tensor' then w:message(5, tensor_msg(a.value))
   elseif a.type == 'floats' then for _, v in ipairs(a.value) do w:float(7, v) end
   else for _, v in ipairs(a.value) do w:varint(8, v) end end
   return w
end

local function node_msg(n)
   local w = wire.writer()
   for _, s in ipairs(n.inputs) do w:bytes(1, s) end
   for _, s in ipairs(n.outputs) do w:bytes(2, s) end
   if n.name then w:bytes(3, n.name) end
   w:bytes(4, n.op_type)
   for _, a in ipairs(n.attributes or {}) do w:message(5, attribute_msg(a)) end
   if n.domain then w:bytes(7, n.domain) end
   return w
end

-- ValueInfoProto { name, TypeProto { tensor_type { elem_type, TensorShapeProto { dim* } } } }
local function value_info_msg(v)
   local shape = wire.writer()
   for _, d in ipairs(v.shape) do
      local dim = wire.writer()
      if type(d) == 'string' then dim:bytes(2, d) else dim:varint(1, d) end   -- dim_param / dim_value
      shape:message(1, dim)
   end
   local tensor_type = wire.writer():varint(1, dtype_code(v.dtype)):message(2, shape)
   local type_proto = wire.writer():message(1, tensor_type)
   return wire.writer():bytes(1, v.name):message(2, type_proto)
end

local function graph_msg(g)
   local w = wire.writer()
   for _, n in ipairs(g.nodes) do w:message(1, node_msg(n)) end
   w:bytes(2, g.name or 'graph')
   for _, t in ipairs(g.initializers) do w:message(5, tensor_msg(t)) end
   if g.doc_string then w:bytes(10, g.doc_string) end
   for _, v in ipairs(g.inputs) do w:message(11, value_info_msg(v)) end
   for _, v in ipairs(g.outputs) do w:message(12, value_info_msg(v)) end
   return w
end

-- The bytes of a ModelProto.
function M.encode(m)
   local w = wire.writer()
   w:varint(1, m.ir_version or 8)
   w:bytes(2, m.producer_name or 'kbl')
   if m.producer_version then w:bytes(3, m.producer_version) end
   if m.doc_string then w:bytes(6, m.doc_string) end
   w:message(7, graph_msg(m.graph))
   for _, o in ipairs(m.opsets) do
      w:message(8, wire.writer():bytes(1, o.domain or ''):varint(2, o.version))
   end
   for _, kv in ipairs(m.metadata or {}) do
      w:message(14, wire.writer():bytes(1, kv[1]):bytes(2, kv[2]))
   end
   return w:finish()
end

-- ---- decoding -------------------------------------------------------------------

local function ints_of(list, wt, v)
   if wt == 2 then
      for _, x in ipairs(wire.unpack_varints(v)) do list[#list + 1] = x end
   else
      list[#list + 1] = v
   end
end

local function decode_tensor(s)
   local t = {dims = {}}
   for f, wt, v in wire.fields(s) do
      if f == 1 then ints_of(t.dims, wt, v)
      elseif f == 2 then t.dtype = DTYPE_NAMES[v] or error('onnx: unsupported tensor data type ' .. v, 0)
      elseif f == 8 then t.name = v
      elseif f == 9 then t.raw = v
      elseif f == 4 or f == 5 or f == 7 or f == 10 or f == 13 then
         error("onnx: tensor '" .. tostring(t.name) .. "' keeps its values outside raw_data, which kbl does not read"
            .. ' (kbl reads the ONNX files it writes)', 0)
      end
   end
   return t
end

local function decode_attribute(s)
   local a, floats, ints = {}, {}, {}
   for f, wt, v in wire.fields(s) do
      if f == 1 then a.name = v
      elseif f == 20 then a.type = ATTR_NAMES[v] or error('onnx: unsupported attribute type ' .. v, 0)
      elseif f == 2 or f == 3 or f == 4 then a.value = v
      elseif f == 5 then a.value = decode_tensor(v)
      elseif f == 7 then floats[#floats + 1] = v
      elseif f == 8 then ints_of(ints, wt, v) end
   end
   if a.type == 'floats' then a.value = floats elseif a.type == 'ints' then a.value = ints end
   return a
end

local function decode_node(s)
   local n = {inputs = {}, outputs = {}, attributes = {}}
   for f, _, v in wire.fields(s) do
      if f == 1 then n.inputs[#n.inputs + 1] = v
      elseif f == 2 then n.outputs[#n.outputs + 1] = v
      elseif f == 3 then n.name = v
      elseif f == 4 then n.op_type = v
      elseif f == 5 then n.attributes[#n.attributes + 1] = decode_attribute(v)
      elseif f == 7 then n.domain = v end
   end
   return n
end

-- A TensorShapeProto.Dimension: its dim_value or dim_param, '?' for neither.
local function decode_dim(s)
   local d = '?'
   for f, _, v in wire.fields(s) do if f == 1 or f == 2 then d = v end end
   return d
end

-- A TypeProto.Tensor: its elem_type into v.dtype, its shape's dims onto v.shape.
local function decode_tensor_type(s, v)
   for f, _, x in wire.fields(s) do
      if f == 1 then v.dtype = DTYPE_NAMES[x] or error('onnx: unsupported data type ' .. x, 0)
      elseif f == 2 then
         for _, _, dim in wire.fields(x) do v.shape[#v.shape + 1] = decode_dim(dim) end
      end
   end
end

local function decode_value_info(s)
   local v = {shape = {}}
   for f, _, x in wire.fields(s) do
      if f == 1 then v.name = x
      elseif f == 2 then
         for tf, _, tt in wire.fields(x) do
            if tf == 1 then decode_tensor_type(tt, v) end
         end
      end
   end
   return v
end

local function decode_graph(s)
   local g = {nodes = {}, initializers = {}, inputs = {}, outputs = {}}
   for f, _, v in wire.fields(s) do
      if f == 1 then g.nodes[#g.nodes + 1] = decode_node(v)
      elseif f == 2 then g.name = v
      elseif f == 5 then g.initializers[#g.initializers + 1] = decode_tensor(v)
      elseif f == 11 then g.inputs[#g.inputs + 1] = decode_value_info(v)
      elseif f == 12 then g.outputs[#g.outputs + 1] = decode_value_info(v) end
   end
   return g
end

-- A ModelProto's bytes as the table encode takes.
function M.decode(s)
   local m = {opsets = {}, metadata = {}}
   for f, _, v in wire.fields(s) do
      if f == 1 then m.ir_version = v
      elseif f == 2 then m.producer_name = v
      elseif f == 3 then m.producer_version = v
      elseif f == 6 then m.doc_string = v
      elseif f == 7 then m.graph = decode_graph(v)
      elseif f == 8 then
         local o = {domain = ''}
         for of, _, ov in wire.fields(v) do
            if of == 1 then o.domain = ov elseif of == 2 then o.version = ov end
         end
         m.opsets[#m.opsets + 1] = o
      elseif f == 14 then
         local kv = {}
         for kf, _, kvv in wire.fields(v) do kv[kf] = kvv end
         m.metadata[#m.metadata + 1] = {kv[1] or '', kv[2] or ''}
      end
   end
   if not m.graph then error('onnx: no graph in the file (not an ONNX model?)', 0) end
   return m
end

return M
