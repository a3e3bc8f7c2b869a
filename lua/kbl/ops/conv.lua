--- kbl.ops.conv: the ops of convolutional models, named as in PyTorch's functional
-- API: conv2d, conv_transpose2d, max/avg/adaptive/global pooling, batch_norm,
-- layer_norm, group_norm, dropout, dropout2d, embedding, upsample_nearest2d.
-- Layout NCHW. Sizes given as a number or an {h, w} pair. Embedding indices and
-- padding_idx count from 1, as everything seen from Lua.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C
local wrap, live, register, is_tensor = T.wrap, T.live, T.register, T.is_tensor

local M = {}

local function fail(msg, level) error('kbl: ' .. msg, (level or 2) + 1) end

local function opt_tensor(t, what, op)
   if t == nil or t == false then return nil end
   if not is_tensor(t) then fail(string.format('%s: %s must be a tensor or nil, got %s', op, what, type(t)), 3) end
   return live(t)
end

-- n or {a, b} -> a, b (whole numbers); nil gives the default
local function pair(v, name, op, default)
   if v == nil then v = default end
   if type(v) == 'number' then v = {v, v} end
   if type(v) ~= 'table' or #v ~= 2 or type(v[1]) ~= 'number' or type(v[2]) ~= 'number'
      or v[1] % 1 ~= 0 or v[2] % 1 ~= 0 then
      fail(string.format('%s: %s must be a whole number or a pair {h, w}, got %s', op, name, tostring(v)), 3)
   end
   return v[1], v[2]
end

local function int64s(...)
   local n = select('#', ...)
   local buf = ffi.new('int64_t[?]', n)
   for i = 1, n do buf[i - 1] = (select(i, ...)) end
   return buf
end

-- The C ops take 4-D input; a 3-D [C, H, W] one is treated as a batch of one.
local function batched(x, op)
   local p = live(x)
   if p.ndim == 3 then return wrap(C.kbl_unsqueeze(p, 0)), true end
   if p.ndim ~= 4 then
      fail(string.format('%s: input must be [N, C, H, W] (or [C, H, W]), got [%s]', op,
         table.concat(x:size(), ', ')), 3)
   end
   return x, false
end

local function unbatched(y, was) return was and wrap(C.kbl_squeeze(live(y), 0, 0)) or y end

-- conv2d's padding: a number, {ph, pw}, 'valid' (none) or 'same' (output size
-- of the input at stride 1; an odd total puts the extra row/column at the end).
local function conv_padding(padding, w, dh, dw, sh, sw, op)
   if padding == 'valid' then return int64s(0, 0, 0, 0) end
   if padding == 'same' then
      if sh ~= 1 or sw ~= 1 then fail(op .. ": padding = 'same' needs stride 1", 3) end
      local kh, kw = w:size(3), w:size(4)
      local th, tw = dh * (kh - 1), dw * (kw - 1)
      local top, left = math.floor(th / 2), math.floor(tw / 2)
      return int64s(top, th - top, left, tw - left)
   end
   if type(padding) == 'string' then
      fail(op .. ": padding must be a number, a pair, 'same' or 'valid', got '" .. padding .. "'", 3)
   end
   local ph, pw = pair(padding, 'padding', op, 0)
   return int64s(ph, ph, pw, pw)
end

--- 2-D convolution of a batch of images (NCHW), as torch.nn.functional.conv2d.
-- @tparam tensor x input [N, C, H, W] (or [C, H, W], a batch of one)
-- @tparam tensor weight [O, C/groups, kh, kw]
-- @tparam[opt] tensor bias [O], or nil
-- @tparam[opt] table opts {stride = 1, padding = 0, dilation = 1, groups = 1}; stride and dilation a number or
-- {sh, sw}; padding a number, {ph, pw}, 'same' or 'valid'
-- @treturn tensor [N, O, H', W']
-- @usage local y = kbl.conv2d(kbl.randn{8, 3, 32, 32}, kbl.randn{16, 3, 3, 3}, nil, {padding = 'same'})
function M.conv2d(x, weight, bias, opts)
   opts = opts or {}
   local xb, was = batched(x, 'conv2d')
   if not is_tensor(weight) or weight:dim() ~= 4 then
      fail('conv2d: weight must be a 4-D tensor [out, in/groups, kh, kw], got '
         .. (is_tensor(weight) and ('[' .. table.concat(weight:size(), ', ') .. ']') or type(weight)))
   end
   local sh, sw = pair(opts.stride, 'stride', 'conv2d', 1)
   local dh, dw = pair(opts.dilation, 'dilation', 'conv2d', 1)
   local pad = conv_padding(opts.padding, weight, dh, dw, sh, sw, 'conv2d')
   local y = wrap(C.kbl_conv2d(live(xb), live(weight), opt_tensor(bias, 'bias', 'conv2d'), int64s(sh, sw),
      pad, int64s(dh, dw), opts.groups or 1))
   return unbatched(y, was)
end

--- Transposed 2-D convolution (the gradient of conv2d with respect to its input), as PyTorch's.
-- @tparam tensor x input [N, C, H, W]
-- @tparam tensor weight [C, O/groups, kh, kw]
-- @tparam[opt] tensor bias [O], or nil
-- @tparam[opt] table opts {stride = 1, padding = 0, output_padding = 0, groups = 1, dilation = 1}
-- @treturn tensor [N, O, H', W']
-- @usage local up = kbl.conv_transpose2d(x, w, nil, {stride = 2})
function M.conv_transpose2d(x, weight, bias, opts)
   opts = opts or {}
   local xb, was = batched(x, 'conv_transpose2d')
   local op = 'conv_transpose2d'
   local sh, sw = pair(opts.stride, 'stride', op, 1)
   local ph, pw = pair(opts.padding, 'padding', op, 0)
   local oph, opw = pair(opts.output_padding, 'output_padding', op, 0)
   local dh, dw = pair(opts.dilation, 'dilation', op, 1)
   local y = wrap(C.kbl_conv_transpose2d(live(xb), live(weight), opt_tensor(bias, 'bias', op), int64s(sh, sw),
      int64s(ph, ph, pw, pw), int64s(oph, opw), int64s(dh, dw), opts.groups or 1))
   return unbatched(y, was)
end

local function pool_args(op, kernel, opts)
   opts = opts or {}
   for _, k in ipairs{'dilation', 'ceil_mode'} do
      if opts[k] then fail(op .. ': ' .. k .. ' is not supported', 3) end
   end
   local kh, kw = pair(kernel, 'kernel', op)
   local sh, sw = pair(opts.stride, 'stride', op, {kh, kw})
   local ph, pw = pair(opts.padding, 'padding', op, 0)
   return int64s(kh, kw), int64s(sh, sw), int64s(ph, pw), opts
end

--- Max pooling over windows of H and W.
-- @tparam tensor x [N, C, H, W] (or [C, H, W])
-- @param kernel the window: a number or {kh, kw}
-- @tparam[opt] table opts {stride = kernel, padding = 0, return_indices = false}
-- @treturn tensor the maxima [N, C, H', W']
-- @treturn tensor with return_indices, the position of each maximum in its H*W plane, from 1
-- @usage local y = kbl.max_pool2d(x, 2)
function M.max_pool2d(x, kernel, opts)
   local k, s, p, o = pool_args('max_pool2d', kernel, opts)
   local xb, was = batched(x, 'max_pool2d')
   local idx = o.return_indices and ffi.new('kbl_tensor *[1]') or nil
   local y = unbatched(wrap(C.kbl_max_pool2d(live(xb), k, s, p, idx)), was)
   if not idx then return y end
   local i = unbatched(wrap(idx[0]), was)
   return y, wrap(C.kbl_unary(C.KBL_AFFINE, live(i), 1, 1))
end

--- Average pooling over windows of H and W.
-- @tparam tensor x [N, C, H, W] (or [C, H, W])
-- @param kernel the window: a number or {kh, kw}
-- @tparam[opt] table opts {stride = kernel, padding = 0, count_include_pad = true}
-- @treturn tensor [N, C, H', W']
-- @usage local y = kbl.avg_pool2d(x, 2)
function M.avg_pool2d(x, kernel, opts)
   local k, s, p, o = pool_args('avg_pool2d', kernel, opts)
   local xb, was = batched(x, 'avg_pool2d')
   local cip = o.count_include_pad == nil or o.count_include_pad
   return unbatched(wrap(C.kbl_avg_pool2d(live(xb), k, s, p, cip and 1 or 0)), was)
end

--- Average pooling to a given output size, whatever the input size.
-- @tparam tensor x [N, C, H, W] (or [C, H, W])
-- @param size the output size: a number or {oh, ow}
-- @treturn tensor [N, C, oh, ow]
-- @usage local y = kbl.adaptive_avg_pool2d(x, 1)
function M.adaptive_avg_pool2d(x, size)
   local oh, ow = pair(size, 'output size', 'adaptive_avg_pool2d')
   local xb, was = batched(x, 'adaptive_avg_pool2d')
   return unbatched(wrap(C.kbl_adaptive_avg_pool2d(live(xb), oh, ow)), was)
end

--- The mean over H and W of each channel.
-- @tparam tensor x [N, C, H, W]
-- @treturn tensor [N, C]
-- @usage local features = kbl.global_avg_pool2d(x)
function M.global_avg_pool2d(x)
   if live(x).ndim ~= 4 then
      fail('global_avg_pool2d: input must be [N, C, H, W], got [' .. table.concat(x:size(), ', ') .. ']')
   end
   return wrap(C.kbl_mean(live(x), 2, ffi.new('int[2]', 2, 3), 0))
end

--- Nearest-neighbour upsampling of H and W.
-- @tparam tensor x [N, C, H, W]
-- @tparam table opts {scale_factor = s or {sh, sw}} or {size = n or {h, w}}
-- @treturn tensor [N, C, H', W']
-- @usage local y = kbl.upsample_nearest2d(x, {scale_factor = 2})
function M.upsample_nearest2d(x, opts)
   opts = opts or {}
   local xb, was = batched(x, 'upsample_nearest2d')
   local h, w = xb:size(3), xb:size(4)
   local oh, ow, sh, sw
   if opts.size then
      oh, ow = pair(opts.size, 'size', 'upsample_nearest2d')
      sh, sw = 0, 0
   elseif opts.scale_factor then
      local f = opts.scale_factor
      if type(f) == 'number' then f = {f, f} end
      if type(f) ~= 'table' or type(f[1]) ~= 'number' or type(f[2]) ~= 'number' or f[1] <= 0 or f[2] <= 0 then
         fail('upsample_nearest2d: scale_factor must be a positive number or pair')
      end
      oh, ow = math.floor(h * f[1]), math.floor(w * f[2])
      sh, sw = 1 / f[1], 1 / f[2]
   else
      fail('upsample_nearest2d: give {scale_factor = s} or {size = {h, w}}')
   end
   return unbatched(wrap(C.kbl_upsample_nearest2d(live(xb), oh, ow, sh, sw)), was)
end

--- Batch normalization over N (and the spatial dims) for each channel C.
-- In training mode the batch's statistics normalize and the running ones are
-- updated in place (they may be nil); in evaluation mode the running ones normalize.
-- @tparam tensor x [N, C] or [N, C, ...]
-- @tparam[opt] tensor running_mean [C]
-- @tparam[opt] tensor running_var [C]
-- @tparam[opt] tensor weight [C] (gamma)
-- @tparam[opt] tensor bias [C] (beta)
-- @tparam[opt] table opts {training = false, momentum = 0.1, eps = 1e-5}
-- @treturn tensor normalized x
-- @usage local y = kbl.batch_norm(x, nil, nil, nil, nil, {training = true})
function M.batch_norm(x, running_mean, running_var, weight, bias, opts)
   opts = opts or {}
   local op = 'batch_norm'
   return wrap(C.kbl_batch_norm(live(x), opt_tensor(running_mean, 'running_mean', op),
      opt_tensor(running_var, 'running_var', op), opt_tensor(weight, 'weight', op), opt_tensor(bias, 'bias', op),
      opts.training and 1 or 0, opts.momentum or 0.1, opts.eps or 1e-5))
end

--- Layer normalization over the trailing dims.
-- @tparam tensor x input
-- @tparam table normalized_shape x's trailing sizes, a list
-- @tparam[opt] tensor weight of that shape
-- @tparam[opt] tensor bias of that shape
-- @tparam[opt=1e-5] number eps
-- @treturn tensor
-- @usage local y = kbl.layer_norm(x, {x:size(-1)})
function M.layer_norm(x, normalized_shape, weight, bias, eps)
   if type(normalized_shape) == 'number' then normalized_shape = {normalized_shape} end
   if type(normalized_shape) ~= 'table' or #normalized_shape == 0 then
      fail('layer_norm: normalized_shape must be a non-empty list of sizes')
   end
   local s, n = x:size(), #normalized_shape
   local ok = n <= #s
   for i = 1, n do ok = ok and s[#s - n + i] == normalized_shape[i] end
   if not ok then
      fail(string.format('layer_norm: input [%s] does not end with normalized_shape [%s]', table.concat(s, ', '),
         table.concat(normalized_shape, ', ')))
   end
   return wrap(C.kbl_layer_norm(live(x), n, opt_tensor(weight, 'weight', 'layer_norm'),
      opt_tensor(bias, 'bias', 'layer_norm'), eps or 1e-5))
end

--- Group normalization: channels in num_groups groups, each normalized over its channels and positions.
-- @tparam tensor x [N, C, ...]
-- @tparam number num_groups divides C
-- @tparam[opt] tensor weight [C]
-- @tparam[opt] tensor bias [C]
-- @tparam[opt=1e-5] number eps
-- @treturn tensor
-- @usage local y = kbl.group_norm(x, 4)
function M.group_norm(x, num_groups, weight, bias, eps)
   if type(num_groups) ~= 'number' then fail('group_norm: num_groups must be a number') end
   return wrap(C.kbl_group_norm(live(x), num_groups, opt_tensor(weight, 'weight', 'group_norm'),
      opt_tensor(bias, 'bias', 'group_norm'), eps or 1e-5))
end

local function dropout_args(op, p, opts)
   if type(p) ~= 'number' then fail(op .. ': p must be a number in [0, 1]', 3) end
   local training = opts == nil or opts.training == nil or opts.training
   return training and 1 or 0
end

--- Dropout: zeroes each element with probability p and scales the rest by 1/(1-p);
-- the identity when not training. Random choices come from kbl's generator.
-- @tparam tensor x
-- @tparam number p the probability of dropping, in [0, 1)
-- @tparam[opt] table opts {training = true}
-- @treturn tensor
-- @usage local y = kbl.dropout(x, 0.5, {training = true})
function M.dropout(x, p, opts) return wrap(C.kbl_dropout(live(x), p, dropout_args('dropout', p, opts))) end

--- Channel dropout: zeroes whole channels of [N, C, ...] with probability p, scaling the rest.
-- @tparam tensor x [N, C, ...]
-- @tparam number p
-- @tparam[opt] table opts {training = true}
-- @treturn tensor
-- @usage local y = kbl.dropout2d(x, 0.1)
function M.dropout2d(x, p, opts) return wrap(C.kbl_dropout2d(live(x), p, dropout_args('dropout2d', p, opts))) end

--- Looks up rows of a table of embeddings.
-- @tparam tensor indices int64 (or int32) positions, from 1
-- @tparam tensor weight [num, dim]
-- @tparam[opt] table opts {padding_idx = nil}: a row (from 1) whose gradient stays zero
-- @treturn tensor indices' shape followed by dim
-- @usage local e = kbl.embedding(kbl.tensor({1, 3}, {dtype = 'int64'}), kbl.randn{10, 4})
function M.embedding(indices, weight, opts)
   opts = opts or {}
   if not is_tensor(indices) then fail('embedding: indices must be an int64 tensor') end
   local ip = live(indices)
   if ip.dtype ~= 3 and ip.dtype ~= 2 then
      fail('embedding: indices must be an int64 tensor (counting from 1), got ' .. lib.dtype_names[ip.dtype])
   end
   local num = live(weight).ndim == 2 and weight:size(1) or 0
   local pad = -1
   if opts.padding_idx then
      local pi = opts.padding_idx
      if type(pi) ~= 'number' or pi % 1 ~= 0 or pi == 0 or pi > num or pi < -num then
         fail(string.format('embedding: padding_idx %s is out of range for %d rows (it counts from 1)',
            tostring(pi), num))
      end
      pad = pi > 0 and pi - 1 or num + pi
   end
   local zero_based = wrap(C.kbl_unary(C.KBL_AFFINE, ip, 1, -1))
   return wrap(C.kbl_embedding(live(zero_based), live(weight), pad))
end

for name, fn in pairs(M) do register(name, fn) end

return M
