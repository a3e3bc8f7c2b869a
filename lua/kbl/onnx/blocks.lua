--- kbl.onnx.blocks: how each block type becomes ONNX nodes (opset 17), one
-- function a type: EXPORT[type_name](block, g, v, path) -> value, where v and
-- the value returned are {name = ONNX name, t = kbl tensor for the example}
-- (kbl/onnx/graph.lua). Compositions export their children in the order their
-- forward runs them. The blocks are in eval mode: Dropout is the identity,
-- BatchNorm uses its running statistics. A block with no entry here (Lambda,
-- a user's own type) stops the export with its type and path.
local kbl = require 'kbl'

local M = {}
local EXPORT = {}
M.EXPORT = EXPORT

local function int(v) return {'int', v} end
local function float(v) return {'float', v} end
local function ints(v) return {'ints', v} end

local function unsupported(b, path, why)
   error(string.format("onnx export: %s at '%s' cannot be exported%s", 'blocks.' .. b.type_name,
      path == '' and '(the model)' or path, why and (': ' .. why) or ''), 0)
end
M.unsupported = unsupported

local function join(path, name) return path == '' and name or (path .. '.' .. name) end

-- Exports one block (any type), by its entry in EXPORT.
function M.export(b, g, v, path)
   local f = EXPORT[b.type_name]
   if not f then unsupported(b, path, 'kbl has no ONNX form for this block type') end
   return f(b, g, v, path)
end
local export = M.export

-- A block's parameter as an initializer named by its path.
local function param(g, b, name, path)
   local t = b._p[name]
   if t == nil then return nil end
   return g:const(t, join(path, name))
end

-- A value made by an ONNX node; `t` computed by kbl from the input value.
local function value(name, t) return {name = name, t = t} end

-- ---- activations --------------------------------------------------------------

-- name -> function(g, x_name, hint) -> ONNX name of act(x)
local ACT = {}
local function simple(op, attrs) return function(g, x, hint) return g:node(op, {x}, attrs, hint) end end
ACT.relu = simple('Relu')
ACT.sigmoid = simple('Sigmoid')
ACT.tanh = simple('Tanh')
ACT.leaky_relu = simple('LeakyRelu', {alpha = float(0.01)})
ACT.elu = simple('Elu', {alpha = float(1)})
ACT.softplus = simple('Softplus')   -- kbl's threshold (20) changes the result by < 1e-8
ACT.softmax = simple('Softmax', {axis = int(-1)})
ACT.log_softmax = simple('LogSoftmax', {axis = int(-1)})
function ACT.silu(g, x, hint) return g:node('Mul', {x, g:node('Sigmoid', {x}, nil, hint .. '.sigmoid')}, nil, hint) end
ACT.swish = ACT.silu
-- gelu(x) = 0.5 x (1 + erf(x / sqrt 2)); Gelu itself is opset 20
function ACT.gelu(g, x, hint)
   local e = g:node('Erf', {g:node('Mul', {x, g:floats(1 / math.sqrt(2), 'inv_sqrt2')}, nil, hint .. '.scaled')},
      nil, hint .. '.erf')
   local h = g:node('Mul', {x, g:node('Add', {e, g:floats(1, 'one')}, nil, hint .. '.plus1')}, nil, hint .. '.xe')
   return g:node('Mul', {h, g:floats(0.5, 'half')}, nil, hint)
end
-- gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
function ACT.gelu_tanh(g, x, hint)
   local x3 = g:node('Mul', {x, g:node('Mul', {x, x}, nil, hint .. '.x2')}, nil, hint .. '.x3')
   local inner = g:node('Add', {x, g:node('Mul', {x3, g:floats(0.044715, 'gelu_c')}, nil, hint .. '.cx3')}, nil,
      hint .. '.inner')
   local th = g:node('Tanh', {g:node('Mul', {inner, g:floats(math.sqrt(2 / math.pi), 'sqrt_2_pi')}, nil,
      hint .. '.u')}, nil, hint .. '.tanh')
   local h = g:node('Mul', {x, g:node('Add', {th, g:floats(1, 'one')}, nil, hint .. '.plus1')}, nil, hint .. '.xt')
   return g:node('Mul', {h, g:floats(0.5, 'half')}, nil, hint)
end

-- act(x) for an activation option (a name, nil/'linear' for none); a Lua
-- function cannot be exported.
local function activation(g, spec, x_name, b, path)
   if spec == nil or spec == false or spec == 'linear' or spec == 'identity' then return x_name end
   if type(spec) == 'function' then unsupported(b, path, 'its activation is a Lua function') end
   local f = ACT[spec]
   if not f then unsupported(b, path, "activation '" .. tostring(spec) .. "' has no ONNX form") end
   return f(g, x_name, join(path, 'act'))
end

-- ---- layers ---------------------------------------------------------------------

function EXPORT.Identity(_, _, v) return v end
function EXPORT.Dropout(_, _, v) return v end   -- the identity at inference

function EXPORT.Activation(b, g, v, path)
   return value(activation(g, b.opts.activation, v.name, b, path), b(v.t))
end

function EXPORT.Normalize(b, g, v, path)
   local x = v.name
   local y = b(v.t)
   if v.t.dtype ~= 'float32' then x = g:node('Cast', {x}, {to = int(1)}, join(path, 'cast')) end
   local m = g:const(b.mul_t, join(path, 'mul'))
   local a = g:const(b.add_t, join(path, 'add'))
   return value(g:node('Add', {g:node('Mul', {x, m}, nil, join(path, 'scaled')), a}, nil, path), y)
end

function EXPORT.Dense(b, g, v, path)
   local y = b(v.t)
   local w = param(g, b, 'weight', path)
   local bias = param(g, b, 'bias', path)
   local out
   if v.t:dim() == 2 then
      local inputs = {v.name, w, bias}
      out = g:node('Gemm', inputs, {transB = int(1)}, join(path, 'gemm'))
   else   -- [N, ..., F]: MatMul with the transposed weight, then the bias
      local wt = g:const(b._p.weight:t():contiguous(), join(path, 'weight_t'))
      out = g:node('MatMul', {v.name, wt}, nil, join(path, 'matmul'))
      if bias then out = g:node('Add', {out, bias}, nil, join(path, 'add')) end
   end
   return value(activation(g, b.opts.activation, out, b, path), y)
end

local function pair(v) if type(v) == 'table' then return {v[1], v[2]} end return {v, v} end

-- Conv's pads attribute: {top, left, bottom, right}.
local function pads_of(b, w)
   local o = b.opts
   local p = o.padding
   if p == 'valid' then return {0, 0, 0, 0} end
   if p == 'same' then   -- as kbl.conv2d: an odd total puts the extra row/column at the end
      local dh, dw = unpack(pair(o.dilation))
      local th, tw = dh * (w:size(3) - 1), dw * (w:size(4) - 1)
      local top, left = math.floor(th / 2), math.floor(tw / 2)
      return {top, left, th - top, tw - left}   -- ONNX: begins, then ends
   end
   local ph, pw = p, p
   if type(p) == 'table' then ph, pw = p[1], p[2] end
   return {ph, pw, ph, pw}
end

local function conv(b, g, v, path, op)
   if v.t:dim() ~= 4 then unsupported(b, path, 'ONNX export takes [N, C, H, W] inputs (got 3 dims)') end
   local y = b(v.t)
   local o, w = b.opts, b._p.weight
   local attrs = {kernel_shape = ints{w:size(3), w:size(4)}, strides = ints(pair(o.stride)),
      dilations = ints(pair(o.dilation)), group = int(b.conv_opts.groups or 1)}
   if op == 'Conv' then
      attrs.pads = ints(pads_of(b, w))
   else
      local p = pair(o.padding)
      attrs.pads = ints{p[1], p[2], p[1], p[2]}
      attrs.output_padding = ints(pair(o.output_padding))
   end
   local inputs = {v.name, param(g, b, 'weight', path)}
   if b._p.bias then inputs[3] = param(g, b, 'bias', path) end
   local out = g:node(op, inputs, attrs, join(path, op == 'Conv' and 'conv' or 'convT'))
   return value(activation(g, o.activation, out, b, path), y)
end
function EXPORT.Conv2D(b, g, v, path) return conv(b, g, v, path, 'Conv') end
EXPORT.DepthwiseConv2D = EXPORT.Conv2D
function EXPORT.Conv2DTranspose(b, g, v, path) return conv(b, g, v, path, 'ConvTranspose') end

local function pool(b, g, v, path, op)
   if v.t:dim() ~= 4 then unsupported(b, path, 'ONNX export takes [N, C, H, W] inputs') end
   local o = b.opts
   local k = pair(o.kernel_size)
   local p = pair(o.padding)
   local attrs = {kernel_shape = ints(k), strides = ints(o.stride and pair(o.stride) or k),
      pads = ints{p[1], p[2], p[1], p[2]}}
   if op == 'AveragePool' then attrs.count_include_pad = int(o.count_include_pad and 1 or 0) end
   return value(g:node(op, {v.name}, attrs, path), b(v.t))
end
function EXPORT.MaxPool2D(b, g, v, path) return pool(b, g, v, path, 'MaxPool') end
function EXPORT.AvgPool2D(b, g, v, path) return pool(b, g, v, path, 'AveragePool') end

function EXPORT.GlobalAvgPool2D(b, g, v, path)
   local p = g:node('GlobalAveragePool', {v.name}, nil, join(path, 'pool'))
   return value(g:node('Flatten', {p}, {axis = int(1)}, path), b(v.t))
end

function EXPORT.Flatten(b, g, v, path)
   local y = b(v.t)
   local sd = b.opts.start_dim
   if v.t:dim() <= sd then return value(v.name, y) end
   if sd == 2 then return value(g:node('Flatten', {v.name}, {axis = int(1)}, path), y) end
   local shape = {}
   for i = 1, sd - 1 do shape[i] = 0 end   -- 0: copy that dim (the batch dim stays dynamic)
   shape[sd] = -1
   return value(g:node('Reshape', {v.name, g:ints(shape)}, nil, path), y)
end

function EXPORT.Reshape(b, g, v, path)
   local shape = {0}
   for i, s in ipairs(b.opts.shape) do shape[i + 1] = s end
   return value(g:node('Reshape', {v.name, g:ints(shape)}, nil, path), b(v.t))
end

local function ones_zeros(g, b, path, c)
   local w = param(g, b, 'weight', path) or g:const(kbl.ones({c}), join(path, 'ones'))
   local bias = param(g, b, 'bias', path) or g:const(kbl.zeros({c}), join(path, 'zeros'))
   return w, bias
end

function EXPORT.BatchNorm(b, g, v, path)
   local y = b(v.t)
   local w, bias = ones_zeros(g, b, path, v.t:size(2))
   local inputs = {v.name, w, bias, param(g, b, 'running_mean', path), param(g, b, 'running_var', path)}
   return value(g:node('BatchNormalization', inputs, {epsilon = float(b.opts.eps)}, path), y)
end

function EXPORT.LayerNorm(b, g, v, path)
   local y = b(v.t)
   local shape = b.normalized_shape
   local w = param(g, b, 'weight', path) or g:const(kbl.ones(shape), join(path, 'ones'))
   local bias = param(g, b, 'bias', path) or g:const(kbl.zeros(shape), join(path, 'zeros'))
   return value(g:node('LayerNormalization', {v.name, w, bias}, {axis = int(-#shape), epsilon = float(b.opts.eps)},
      path), y)
end

-- GroupNorm composed (ONNX's GroupNormalization, opset 18-21, changed meaning
-- between versions): [N, G, -1], mean and biased variance over the last dim,
-- back to x's shape, then weight and bias per channel.
function EXPORT.GroupNorm(b, g, v, path)
   local y = b(v.t)
   local x, rank, c = v.name, v.t:dim(), v.t:size(2)
   local groups = g:node('Reshape', {x, g:ints{0, b.opts.num_groups, -1}}, nil, join(path, 'groups'))
   local mean = g:node('ReduceMean', {groups}, {axes = ints{2}, keepdims = int(1)}, join(path, 'mean'))
   local d = g:node('Sub', {groups, mean}, nil, join(path, 'centered'))
   local var = g:node('ReduceMean', {g:node('Mul', {d, d}, nil, join(path, 'sq'))}, {axes = ints{2},
      keepdims = int(1)}, join(path, 'var'))
   local std = g:node('Sqrt', {g:node('Add', {var, g:floats(b.opts.eps, join(path, 'eps'))}, nil,
      join(path, 'var_eps'))}, nil, join(path, 'std'))
   local n = g:node('Div', {d, std}, nil, join(path, 'normed'))
   local out = g:node('Reshape', {n, g:node('Shape', {x}, nil, join(path, 'shape'))}, nil, join(path, 'ungroup'))
   if b._p.weight then
      local shape = {c}
      for _ = 3, rank do shape[#shape + 1] = 1 end
      local w = g:const(b._p.weight:reshape(shape), join(path, 'weight'))
      local bias = g:const(b._p.bias:reshape(shape), join(path, 'bias'))
      out = g:node('Add', {g:node('Mul', {out, w}, nil, join(path, 'scaled')), bias}, nil, path)
   end
   return value(out, y)
end

-- kbl's indices count from 1; ONNX's Gather from 0.
function EXPORT.Embedding(b, g, v, path)
   local y = b(v.t)
   local idx = v.name
   if v.t.dtype ~= 'int64' then idx = g:node('Cast', {idx}, {to = int(7)}, join(path, 'cast')) end
   local zero_based = g:node('Sub', {idx, g:const(kbl.tensor({1}, {dtype = 'int64'}), join(path, 'one'))}, nil,
      join(path, 'index'))
   return value(g:node('Gather', {param(g, b, 'weight', path), zero_based}, {axis = int(0)}, path), y)
end

function EXPORT.Lambda(b, _, _, path) unsupported(b, path, 'it runs a Lua function') end

-- ---- compositions -----------------------------------------------------------------

-- The children in order (Sequential, MLP, ConvNet, ResNet, the heads).
local function chain(b, g, v, path)
   for _, c in ipairs(b._children) do v = export(c[2], g, v, join(path, c[1])) end
   return v
end
for _, t in ipairs{'Sequential', 'MLP', 'ConvNet', 'ResNet', 'ClassificationHead', 'RegressionHead'} do
   EXPORT[t] = chain
end

function EXPORT.Model(b, g, v, path)
   for _, part in ipairs{'preprocess', 'backbone', 'neck', 'head', 'postprocess'} do
      local c = b._child[part]
      if c then v = export(c, g, v, join(path, part)) end
   end
   return v
end

function EXPORT.Residual(b, g, v, path)
   local y = b(v.t)   -- also makes an automatic projection on a first call
   local fx = export(b._child.body, g, v, join(path, 'body'))
   local short = v
   if b._child.projection then short = export(b._child.projection, g, v, join(path, 'projection')) end
   local sum = g:node('Add', {short.name, fx.name}, nil, join(path, 'add'))
   return value(activation(g, b.opts.activation, sum, b, path), y)
end

function EXPORT.Branches(b, g, v, path)
   local join_, dim = b.opts.join, b.opts.dim
   if type(join_) == 'function' then unsupported(b, path, 'its join is a Lua function') end
   if join_ == 'list' then unsupported(b, path, "join = 'list' gives a Lua list, not a tensor") end
   local y = b(v.t)
   local outs = {}
   for i, c in ipairs(b._children) do outs[i] = export(c[2], g, v, join(path, c[1])).name end
   local rank = y:dim()
   local axis = dim < 0 and rank + dim or dim - 1
   if join_ == 'concat' then return value(g:node('Concat', outs, {axis = int(axis)}, path), y) end
   if join_ == 'stack' then
      for i, o in ipairs(outs) do
         outs[i] = g:node('Unsqueeze', {o, g:ints{axis}}, nil, join(path, 'unsqueeze' .. i))
      end
      return value(g:node('Concat', outs, {axis = int(axis)}, path), y)
   end
   local op = join_ == 'add' and 'Add' or 'Mul'
   local acc = outs[1]
   for i = 2, #outs do acc = g:node(op, {acc, outs[i]}, nil, i == #outs and path or join(path, op:lower() .. i)) end
   return value(acc, y)
end

return M
