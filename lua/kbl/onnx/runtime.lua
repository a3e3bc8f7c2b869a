--- kbl.onnx.runtime: runs an ONNX file that kbl exported, with kbl's own ops,
-- so `kbl predict model.onnx` needs neither onnxruntime nor the run directory.
-- It reads the protobuf subset kbl writes (kbl/onnx/format.lua) and knows the
-- operators kbl/onnx/blocks.lua emits, with the attributes it sets; any other
-- operator or attribute is an error naming it (use onnxruntime for those files).
--
--   local rt = require('kbl.onnx.runtime').load('model.onnx')
--   rt.input   -- {name =, dtype =, shape = {'N', 1, 28, 28}};  rt.metadata.class_names
--   local y = rt:run(x)
local ffi = require 'ffi'
local kbl = require 'kbl'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local format = require 'kbl.onnx.format'
local C = lib.C

pcall(ffi.cdef, 'double erf(double x);')   -- libm, already in the process

local M = {}
local OPS = {}
M.OPS = OPS

local function attrs_of(node)
   local a = {}
   for _, at in ipairs(node.attributes) do a[at.name] = at.value end
   return a
end

local function fail(node, msg)
   error(string.format("onnx runtime: node '%s' (%s): %s", tostring(node.name), node.op_type, msg), 0)
end

-- Refuses attributes a handler does not read.
local function only(node, a, allowed)
   for k in pairs(a) do
      if not allowed[k] then fail(node, "attribute '" .. k .. "' is not supported by kbl's runtime") end
   end
end

local function tensor_from(init)
   local n, s = T.shape_arg(init.dims)
   local dt = lib.dtype_id(init.dtype)
   local t = T.wrap(C.kbl_empty(n, s, dt))
   local nbytes = tonumber(C.kbl_numel(T.live(t))) * tonumber(C.kbl_dtype_size(dt))
   if #init.raw ~= nbytes then
      error(string.format("onnx: initializer '%s' has %d bytes for %s [%s]", init.name, #init.raw, init.dtype,
         table.concat(init.dims, ', ')), 0)
   end
   ffi.copy(C.kbl_data_ptr(T.live(t)), init.raw, nbytes)
   return kbl.keep(t)
end

local function pair(list) return {list[1], list[2]} end

-- ONNX pads {top, left, bottom, right} that must be symmetric, as a kbl padding pair.
local function symmetric_pads(node, pads)
   local p = pads or {0, 0, 0, 0}
   if p[1] ~= p[3] or p[2] ~= p[4] then fail(node, 'asymmetric pads') end
   return {p[1], p[2]}
end

-- ONNX pads {top, left, bottom, right} as kbl's padding: a pair, or 'same'
-- where kbl's rule (the odd extra row/column at the end) gives them.
local function padding(node, pads, w, dil)
   pads = pads or {0, 0, 0, 0}
   if pads[1] == pads[3] and pads[2] == pads[4] then return {pads[1], pads[2]} end
   local th, tw = dil[1] * (w:size(3) - 1), dil[2] * (w:size(4) - 1)
   if pads[1] == math.floor(th / 2) and pads[3] == th - pads[1] and pads[2] == math.floor(tw / 2)
      and pads[4] == tw - pads[2] then return 'same' end
   fail(node, 'asymmetric pads {' .. table.concat(pads, ', ') .. '} are not supported')
end

-- ONNX data type codes -> kbl dtypes, for those kbl's tensors have.
local DT = {}
for code, name in pairs(format.DTYPE_NAMES) do
   if lib.dtypes[name] then DT[code] = name end
end

function OPS.Identity(_, _, x) return x end
function OPS.Cast(node, a, x)
   only(node, a, {to = true})
   local dt = DT[a.to] or fail(node, 'cast to data type ' .. tostring(a.to))
   return x:to(dt)
end
function OPS.Add(_, _, a, b) return a + b end
function OPS.Sub(_, _, a, b) return a - b end
function OPS.Mul(_, _, a, b) return a * b end
function OPS.Div(_, _, a, b) return a / b end
function OPS.Sqrt(_, _, x) return x:sqrt() end
function OPS.Relu(_, _, x) return kbl.relu(x) end
function OPS.Sigmoid(_, _, x) return kbl.sigmoid(x) end
function OPS.Tanh(_, _, x) return kbl.tanh(x) end
function OPS.Softplus(_, _, x) return kbl.softplus(x) end
function OPS.LeakyRelu(_, a, x) return kbl.leaky_relu(x, a.alpha or 0.01) end
function OPS.Elu(_, a, x) return kbl.elu(x, a.alpha or 1) end
function OPS.Softmax(_, a, x) return kbl.softmax(x, (a.axis or -1) < 0 and a.axis or a.axis + 1) end
function OPS.LogSoftmax(_, a, x) return kbl.log_softmax(x, (a.axis or -1) < 0 and a.axis or a.axis + 1) end
-- Erf (kbl's gelu in exported graphs) element by element through libm: kbl
-- has no erf op, and only gelu's export writes it.
function OPS.Erf(node, _, x)
   if x.dtype ~= 'float32' then fail(node, 'Erf of ' .. x.dtype) end
   local y = x:contiguous():clone()
   local p = ffi.cast('float *', C.kbl_data_ptr(T.live(y)))
   for i = 0, tonumber(C.kbl_numel(T.live(y))) - 1 do p[i] = ffi.C.erf(p[i]) end
   return y
end

function OPS.Gemm(node, a, x, w, b)
   only(node, a, {transB = true})
   if a.transB ~= 1 then fail(node, 'Gemm without transB = 1') end
   return kbl.linear(x, w, b)
end
function OPS.MatMul(_, _, x, w) return kbl.matmul(x, w) end

function OPS.Conv(node, a, x, w, b)
   only(node, a, {kernel_shape = true, strides = true, dilations = true, group = true, pads = true})
   local dil = pair(a.dilations or {1, 1})
   return kbl.conv2d(x, w, b, {stride = pair(a.strides or {1, 1}), dilation = dil, groups = a.group or 1,
      padding = padding(node, a.pads, w, dil)})
end
function OPS.ConvTranspose(node, a, x, w, b)
   only(node, a, {kernel_shape = true, strides = true, dilations = true, group = true, pads = true,
      output_padding = true})
   return kbl.conv_transpose2d(x, w, b, {stride = pair(a.strides or {1, 1}), dilation = pair(a.dilations or {1, 1}),
      groups = a.group or 1, padding = symmetric_pads(node, a.pads), output_padding = pair(a.output_padding or {0, 0})})
end

local function pool_opts(node, a)
   only(node, a, {kernel_shape = true, strides = true, pads = true, count_include_pad = true})
   return pair(a.kernel_shape), {stride = pair(a.strides or a.kernel_shape), padding = symmetric_pads(node, a.pads),
      count_include_pad = a.count_include_pad == 1}
end
function OPS.MaxPool(node, a, x) return kbl.max_pool2d(x, pool_opts(node, a)) end
function OPS.AveragePool(node, a, x) return kbl.avg_pool2d(x, pool_opts(node, a)) end
function OPS.GlobalAveragePool(_, _, x)
   return kbl.global_avg_pool2d(x):reshape{x:size(1), x:size(2), 1, 1}
end

function OPS.Flatten(_, a, x)
   local axis = a.axis or 1
   if axis < 0 then axis = x:dim() + axis end
   local rows = 1
   for i = 1, axis do rows = rows * x:size(i) end
   return x:reshape{rows, -1}
end
function OPS.Shape(_, _, x) return kbl.tensor(x:size(), {dtype = 'int64'}) end
function OPS.Reshape(_, _, x, shape)
   local s = shape:tolist()
   for i, v in ipairs(s) do if v == 0 then s[i] = x:size(i) end end
   return x:reshape(s)
end
function OPS.Unsqueeze(_, _, x, axes)
   local d = axes:tolist()[1]
   return x:unsqueeze(d < 0 and x:dim() + 2 + d or d + 1)
end
function OPS.Concat(_, a, ...) return kbl.cat({...}, a.axis < 0 and a.axis or a.axis + 1) end
function OPS.Gather(node, a, w, idx)
   if (a.axis or 0) ~= 0 then fail(node, 'Gather on an axis other than 0') end
   return kbl.embedding(idx + 1, w)   -- kbl counts rows from 1
end

function OPS.BatchNormalization(node, a, x, w, b, mean, var)
   only(node, a, {epsilon = true})
   return kbl.batch_norm(x, mean, var, w, b, {training = false, eps = a.epsilon or 1e-5})
end
function OPS.LayerNormalization(node, a, x, w, b)
   only(node, a, {axis = true, epsilon = true})
   local axis = a.axis or -1
   local first = axis < 0 and x:dim() + axis + 1 or axis + 1
   local shape = {}
   for i = first, x:dim() do shape[#shape + 1] = x:size(i) end
   return kbl.layer_norm(x, shape, w, b, a.epsilon or 1e-5)
end
function OPS.ReduceMean(node, a, x)
   only(node, a, {axes = true, keepdims = true})
   local dims = {}
   for i, d in ipairs(a.axes) do dims[i] = d < 0 and d or d + 1 end
   return kbl.mean(x, dims, a.keepdims ~= 0)
end

local Runtime = {}
Runtime.__index = Runtime

-- Loads a file and checks every operator is known.
function M.load(path)
   local bytes = require('kbl.io.fs').read(path) or error('cannot open ' .. path, 0)
   local ok, m = pcall(format.decode, bytes)
   if not ok then error(path .. ': ' .. tostring(m), 0) end
   local g = m.graph
   if #g.inputs ~= 1 or #g.outputs ~= 1 then
      error(string.format('%s: kbl runs graphs of one input and one output (this one has %d and %d)', path,
         #g.inputs, #g.outputs), 0)
   end
   for _, o in ipairs(m.opsets) do
      if (o.domain or '') ~= '' then error(path .. ': operator domain ' .. o.domain .. ' is not supported', 0) end
   end
   for _, n in ipairs(g.nodes) do
      if not OPS[n.op_type] then
         error(string.format("%s: operator %s (node '%s') is not one kbl runs; kbl runs the ONNX files it exports "
            .. '(run this one with onnxruntime)', path, n.op_type, tostring(n.name)), 0)
      end
   end
   local consts = {}
   for _, init in ipairs(g.initializers) do consts[init.name] = tensor_from(init) end
   local metadata = {}
   for _, kv in ipairs(m.metadata) do metadata[kv[1]] = kv[2] end
   local attrs = {}   -- each node's attributes by name, in node order
   for i, n in ipairs(g.nodes) do attrs[i] = attrs_of(n) end
   return setmetatable({path = path, model = m, graph = g, consts = consts, input = g.inputs[1],
      output = g.outputs[1], metadata = metadata, attrs = attrs}, Runtime)
end

-- The graph's output for x (a tensor of the input's dtype and shape).
function Runtime:run(x)
   local values = setmetatable({[self.input.name] = x}, {__index = self.consts})
   return kbl.no_grad(function()
      for k, n in ipairs(self.graph.nodes) do
         local args = {}
         for i, name in ipairs(n.inputs) do
            if name ~= '' then
               args[i] = values[name]
               if args[i] == nil then fail(n, "input '" .. name .. "' is not computed before it") end
            end
         end
         local ok, y = pcall(OPS[n.op_type], n, self.attrs[k], unpack(args, 1, #n.inputs))
         if not ok then error(tostring(y):match('^onnx runtime') and y or
            string.format("onnx runtime: node '%s' (%s): %s", tostring(n.name), n.op_type, tostring(y)), 0) end
         values[n.outputs[1]] = y
      end
      return values[self.output.name]
   end)
end

return M
