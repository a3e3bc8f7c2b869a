--- kbl.data.augment: the batched augmentation steps, C kernels run after batch()
-- (core/data_augment.c). On a batch that is still lazy (rows not yet gathered)
-- a step only appends its op, so gather and every kernel run together in C, on
-- the prefetch thread when there is one.
--
--   p:normalize{mean = 0.286, std = 0.353}          -- or per-channel lists
--   p:random_flip{horizontal = true, vertical = false, p = 0.5}
--   p:random_crop{size = 28, padding = 4, fill = 0}  -- size/padding: n or {h, w}
--   p:random_translate{max = 3, fill = 0}            -- shift by -max..max pixels
--   p:gaussian_noise{std = 0.1}
--   p:random_erasing{p = 0.5, scale = {0.02, 0.33}, ratio = {0.3, 3.3}, value = 0}
--   p:mixup{alpha = 0.2}   -- y becomes soft targets float32 [B, C]; lambda and
--                          -- the partner are drawn per element
--
-- Each takes seed = n (default: the seed of the shuffle before it, else 0);
-- its random choices depend on (seed, its kind and how many steps of that
-- kind precede it, epoch, element): adding a map or a prefetch changes nothing.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local B = require 'kbl.data.base'
local Pipeline = require 'kbl.data.pipeline'
local C = lib.C

local M = {}

local out2 = ffi.typeof('kbl_tensor *[2]')

local function apply(op, b)
   local out = out2()
   local rc = C.kbl_data_augment(op, T.live(b.x), b.y and T.live(b.y) or nil, b.ids, b.epochs, 0, out, out + 1)
   if rc ~= 0 then error(ffi.string(C.kbl_last_error()), 0) end
   local x, y = B.take_results(out)
   return {batch = true, x = x, y = y, n = b.n, ids = b.ids, epochs = b.epochs}
end

-- A pair {a, b} from a number or a list of two.
local function pair(v, what, default)
   if v == nil then v = default end
   if type(v) == 'number' then return v, v end
   if type(v) == 'table' and #v == 2 and type(v[1]) == 'number' and type(v[2]) == 'number' then return v[1], v[2] end
   error(string.format('data: %s must be a number or a list of two numbers, got %s', what, tostring(v)), 4)
end

local function prob(v, what)
   if v == nil then return 0.5 end
   if type(v) ~= 'number' or v < 0 or v > 1 then
      error(string.format('data: %s must be a probability in [0, 1], got %s', what, tostring(v)), 4)
   end
   return v
end

-- The step: kind (kbl_data_op_kind), args (for messages and fingerprints), fill(op).
local function step(prev, name, kind, args, fill)
   if not prev.batched then
      error('data: ' .. name .. ' is a batched kernel: put it after batch()', 3)
   end
   args = args or {}
   if args.seed ~= nil then Pipeline.check_count(args.seed, name .. ' seed', true) end
   local node = Pipeline.derive(prev, {aug = name, args = args, same_count = true})
   local op = ffi.new('kbl_data_op')
   op.kind = kind
   op.salt = Pipeline.salt(node, name, 2 + kind)
   op.seed = args.seed or node.seed
   fill(op)
   node.op = op
   function node:_open(epoch)
      local up = self.parent:_open(epoch)
      local s = Pipeline.stream(up, function()
         local b = up:next()
         if b == nil then return nil end
         if not b.batch then error('data: ' .. name .. ' expects batches', 0) end
         if b.lazy then
            local ops = {unpack(b.ops)}
            ops[#ops + 1] = op
            return {batch = true, lazy = true, base = b.base, n = b.n, ids = b.ids, epochs = b.epochs, ops = ops}
         end
         return apply(op, b)
      end, function(_, k) return up:skip(k) end)
      s.base = nil
      return s
   end
   function node:_count() return self.parent:_count() end
   function node:_fingerprint()
      return self.parent:_fingerprint() .. ';' .. name .. '(' .. B.value_text(args, 1) .. ',' .. tostring(op.seed)
         .. ',' .. op.salt .. ')'
   end
   function node._describe() return name end
   return node
end

--- (x - mean) / std on batches, per channel with lists.
-- @param prev the pipeline
-- @tparam table o {mean = n or {...}, std = n or {...}}
-- @treturn table the pipeline
-- @usage p = p:batch(128):normalize{mean = 0.286, std = 0.353}
function Pipeline.normalize(prev, o)
   o = o or {}
   local function list(v, what)
      if type(v) == 'number' then return {v} end
      if type(v) == 'table' and #v >= 1 and #v <= 16 then return v end
      error(string.format('data: normalize: %s must be a number or a list of 1 to 16 numbers (one per channel), got %s',
         what, tostring(v)), 3)
   end
   local mean, std = list(o.mean, 'mean'), list(o.std, 'std')
   if #mean ~= #std then error('data: normalize: mean and std have different lengths', 2) end
   for i = 1, #std do
      if type(mean[i]) ~= 'number' or type(std[i]) ~= 'number' or std[i] == 0 then
         error('data: normalize: channel ' .. i .. ' needs a number mean and a non-zero std', 2)
      end
   end
   return step(prev, 'normalize', C.KBL_AUG_NORMALIZE, o, function(op)
      op.nchan = #mean
      for i = 1, #mean do op.mean[i - 1], op.std[i - 1] = mean[i], std[i] end
   end)
end

--- Flips images of a batch at random.
-- @param prev the pipeline
-- @tparam[opt] table o {horizontal = true, vertical = false, p = 0.5, seed}
-- @treturn table the pipeline
-- @usage p = p:batch(128):random_flip{}
function Pipeline.random_flip(prev, o)
   o = o or {}
   local p = prob(o.p, 'random_flip p')
   local h = o.horizontal == nil and true or o.horizontal
   return step(prev, 'random_flip', C.KBL_AUG_FLIP, o, function(op)
      op.prob = p
      op.flags = (h and 1 or 0) + (o.vertical and 2 or 0)
   end)
end

--- Pads and crops images of a batch at random positions.
-- @param prev the pipeline
-- @tparam table o {size = n or {h, w}, padding = 0, fill = 0, seed}
-- @treturn table the pipeline
-- @usage p = p:batch(128):random_crop{size = 28, padding = 4}
function Pipeline.random_crop(prev, o)
   o = o or {}
   if o.size == nil then error('data: random_crop needs size = n or {h, w}', 2) end
   local h, w = pair(o.size, 'random_crop size')
   local py, px = pair(o.padding, 'random_crop padding', 0)
   for _, v in ipairs{h, w, py, px} do
      if v % 1 ~= 0 or v < 0 then error('data: random_crop size and padding must be non-negative integers', 2) end
   end
   return step(prev, 'random_crop', C.KBL_AUG_CROP, o, function(op)
      op.size[0], op.size[1], op.pad[0], op.pad[1] = h, w, py, px
      op.fill = o.fill or 0
   end)
end

--- Shifts images of a batch by -max..max pixels at random.
-- @param prev the pipeline
-- @tparam table o {max, fill = 0, seed}
-- @treturn table the pipeline
-- @usage p = p:batch(128):random_translate{max = 3}
function Pipeline.random_translate(prev, o)
   o = o or {}
   if o.max == nil then error('data: random_translate needs max = n or {y, x} (pixels)', 2) end
   local my, mx = pair(o.max, 'random_translate max')
   if my % 1 ~= 0 or mx % 1 ~= 0 or my < 0 or mx < 0 then
      error('data: random_translate max must be non-negative integers', 2)
   end
   return step(prev, 'random_translate', C.KBL_AUG_TRANSLATE, o, function(op)
      op.pad[0], op.pad[1] = my, mx
      op.fill = o.fill or 0
   end)
end

--- Adds normal noise to the batch's x.
-- @param prev the pipeline
-- @tparam table o {std, seed}
-- @treturn table the pipeline
-- @usage p = p:batch(128):gaussian_noise{std = 0.1}
function Pipeline.gaussian_noise(prev, o)
   o = o or {}
   if type(o.std) ~= 'number' or o.std < 0 then error('data: gaussian_noise needs std = a non-negative number', 2) end
   return step(prev, 'gaussian_noise', C.KBL_AUG_NOISE, o, function(op) op.a = o.std end)
end

--- Erases a random rectangle of each image (Zhong et al.).
-- @param prev the pipeline
-- @tparam[opt] table o {p = 0.5, scale = {0.02, 0.33}, ratio = {0.3, 3.3}, value = 0, seed}
-- @treturn table the pipeline
-- @usage p = p:batch(128):random_erasing{}
function Pipeline.random_erasing(prev, o)
   o = o or {}
   local p = prob(o.p, 'random_erasing p')
   local s0, s1 = pair(o.scale, 'random_erasing scale', {0.02, 0.33})
   local r0, r1 = pair(o.ratio, 'random_erasing ratio', {0.3, 3.3})
   if s0 < 0 or s1 > 1 or s0 > s1 or r0 <= 0 or r0 > r1 then
      error('data: random_erasing needs 0 <= scale[1] <= scale[2] <= 1 and 0 < ratio[1] <= ratio[2]', 2)
   end
   return step(prev, 'random_erasing', C.KBL_AUG_ERASE, o, function(op)
      op.prob, op.a, op.b, op.c, op.d = p, s0, s1, r0, r1
      op.fill = o.value or 0
   end)
end

--- Mixup: each element mixed with a partner; y becomes soft targets float32 [B, C].
-- @param prev the pipeline
-- @tparam[opt] table o {alpha = 0.2, seed}
-- @treturn table the pipeline
-- @usage p = p:batch(128):mixup{alpha = 0.2}
function Pipeline.mixup(prev, o)
   o = o or {}
   local alpha = o.alpha or 0.2
   if type(alpha) ~= 'number' or alpha <= 0 then error('data: mixup alpha must be a positive number', 2) end
   local nc = o.num_classes or (prev.meta and prev.meta.num_classes)
   if type(nc) ~= 'number' then
      error('data: mixup needs num_classes (the source meta has none; pass mixup{num_classes = C})', 2)
   end
   return step(prev, 'mixup', C.KBL_AUG_MIXUP, o, function(op)
      op.a = alpha
      op.num_classes = nc
   end)
end

M.apply = apply
return M
