-- nn ops: matmul in every form, linear, softmax/log_softmax, cross entropy
-- (labels 1..C, ignore_index, label smoothing, weights, reductions, [N, C, d]),
-- binary cross entropy with logits, mse/l1/huber; values against hand results and
-- PyTorch fixtures, errors, and float64 gradient checks.
local kbl = require 'kbl'
local H = require 'helper'
local F = require 'fixtures.ops'

local f64 = {dtype = 'float64'}
local function t64(v) return kbl.tensor(v, f64) end
local function i64(v) return kbl.tensor(v, {dtype = 'int64'}) end

local function error_of(fn)
   local ok, err = pcall(fn)
   assert.is_false(ok, 'expected an error')
   return tostring(err)
end

-- reference product of two nested tables
local function matmul_ref(a, b)
   local r = {}
   for i = 1, #a do
      r[i] = {}
      for j = 1, #b[1] do
         local s = 0
         for k = 1, #b do s = s + a[i][k] * b[k][j] end
         r[i][j] = s
      end
   end
   return r
end

describe('matmul', function()
   local m = t64{{1, 2}, {3, 4}, {5, 6}}     -- [3, 2]
   local v3, v2 = t64{1, 0, -1}, t64{2, -1}

   it('multiplies 1-D by 1-D (a dot product, 0-dim)', function()
      local r = v3:matmul(t64{4, 5, 6})
      assert.equal(0, r:dim())
      assert.equal(-2, r:item())
      assert.equal(-2, kbl.dot(v3, t64{4, 5, 6}):item())
   end)

   it('multiplies 2-D by 1-D and 1-D by 2-D', function()
      local r = m:matmul(v2)
      assert.same({3}, r:size())
      H.assert_close(r, {0, 2, 4})
      r = v3:matmul(m)
      assert.same({2}, r:size())
      H.assert_close(r, {-4, -4})
   end)

   it('multiplies 2-D by 2-D', function()
      local b = t64{{1, 0, 2, -1}, {3, 1, 0, 2}}
      H.assert_close(m:matmul(b), matmul_ref(m:tolist(), b:tolist()))
      local x, y = kbl.randn(7, 5), kbl.randn(5, 3)
      H.assert_close(x:matmul(y), matmul_ref(x:tolist(), y:tolist()), 1e-5)
   end)

   it('batches, broadcasting batch dims: [2,1,3,4] . [5,4,2] -> [2,5,3,2]', function()
      kbl.manual_seed(3)
      local a, b = kbl.randn({2, 1, 3, 4}, f64), kbl.randn({5, 4, 2}, f64)
      local r = a:matmul(b)
      assert.same({2, 5, 3, 2}, r:size())
      for i = 1, 2 do
         for j = 1, 5 do
            H.assert_close(r[i][j], matmul_ref(a[i][1]:tolist(), b[j]:tolist()), 1e-12)
         end
      end
      -- a batch times a matrix, and a matrix times a batch
      local c = kbl.randn({4, 2}, f64)
      local r2 = a:matmul(c)
      assert.same({2, 1, 3, 2}, r2:size())
      H.assert_close(r2[2][1], matmul_ref(a[2][1]:tolist(), c:tolist()), 1e-12)
      local r3 = kbl.randn({3, 4}, f64):matmul(b)
      assert.same({5, 3, 2}, r3:size())
      -- batched with a 1-D operand
      assert.same({2, 1, 3}, a:matmul(t64{1, 2, 3, 4}):size())
   end)

   it('reads transposed operands through t() views without copying them', function()
      kbl.manual_seed(5)
      local a, b = kbl.randn(256, 64), kbl.randn(64, 256)   -- a:t() is [64, 256], b:t() [256, 64]
      local at, bt = a:t(), b:t()
      assert.is_false(at:is_contiguous())
      local expect = matmul_ref(at:contiguous():tolist(), bt:contiguous():tolist())
      collectgarbage()
      local before = kbl.memory.stats().live_bytes
      kbl.memory.reset_peak()
      local r = at:matmul(bt)
      local extra = kbl.memory.stats().peak_bytes - before
      -- the result is 64 * 64 * 4 = 16 KiB; a copy of either operand would add 64 KiB
      assert.is_true(extra <= 2 * 16384, 'matmul of transposed views allocated ' .. extra .. ' bytes')
      H.assert_close(r, expect, 1e-4)
      -- batched transposes too
      local x = kbl.randn({3, 4, 5}, f64)
      local y = kbl.randn({3, 4, 2}, f64)
      local p = x:transpose(2, 3):matmul(y)
      H.assert_close(p[2], matmul_ref(x[2]:t():contiguous():tolist(), y[2]:tolist()), 1e-12)
   end)

   it('names both shapes when inner dims differ', function()
      local msg = error_of(function() return kbl.ones(2, 3):matmul(kbl.ones(4, 2)) end)
      assert.matches('matmul', msg)
      assert.matches('[2, 3]', msg, 1, true)
      assert.matches('[4, 2]', msg, 1, true)
      msg = error_of(function() return kbl.ones(3):matmul(kbl.ones(4)) end)
      assert.matches('[3] float32 times [4] float32', msg, 1, true)
      msg = error_of(function() return kbl.ones(2, 1, 3, 4):matmul(kbl.ones(5, 3, 2)) end)
      assert.matches('inner dimensions differ', msg)
      msg = error_of(function() return kbl.ones(2, 3, 4):matmul(kbl.ones(5, 4, 2)) end)
      assert.matches('broadcast', msg)
      assert.matches('float32', error_of(function() return kbl.ones(2, 2):matmul(t64{{1, 2}, {3, 4}}) end))
   end)

   it('has float64 gradients in every form', function()
      H.gradcheck(kbl.matmul, {H.leaf{3}, H.leaf{3}})
      H.gradcheck(kbl.matmul, {H.leaf{3, 4}, H.leaf{4}})
      H.gradcheck(kbl.matmul, {H.leaf{4}, H.leaf{4, 2}})
      H.gradcheck(kbl.matmul, {H.leaf{3, 4}, H.leaf{4, 2}})
      H.gradcheck(kbl.matmul, {H.leaf{2, 1, 3, 4}, H.leaf{5, 4, 2}})
      H.gradcheck(kbl.matmul, {H.leaf{2, 3, 4}, H.leaf{4, 2}})
      H.gradcheck(kbl.matmul, {H.leaf{3, 4}, H.leaf{2, 4, 2}})
      H.gradcheck(kbl.matmul, {H.leaf{2, 3, 4}, H.leaf{4}})
      H.gradcheck(function(a, b) return a:t():matmul(b:t()) end, {H.leaf{4, 3}, H.leaf{2, 4}})
   end)
end)

describe('linear', function()
   local x = t64{{1, 2, 3}, {-1, 0, 1}}
   local w = t64{{1, 0, 1}, {2, -1, 0}}      -- [out 2, in 3]
   local b = t64{10, 20}

   it('computes x . W^T with and without bias', function()
      H.assert_close(kbl.linear(x, w), {{4, 0}, {0, -2}})
      H.assert_close(kbl.linear(x, w, b), {{14, 20}, {10, 18}})
      H.assert_close(kbl.linear(t64{1, 2, 3}, w, b), {14, 20})
   end)

   it('takes inputs with leading dims', function()
      local x3 = kbl.randn({2, 5, 3}, f64)
      local r = kbl.linear(x3, w, b)
      assert.same({2, 5, 2}, r:size())
      H.assert_close(r[2], kbl.linear(x3[2], w, b), 1e-12)
      H.assert_close(r, x3:matmul(w:t()) + b, 1e-12)
   end)

   it('names the shapes that do not fit', function()
      local msg = error_of(function() return kbl.linear(kbl.ones(2, 4), kbl.ones(2, 3)) end)
      assert.matches('[2, 4]', msg, 1, true)
      assert.matches('[2, 3]', msg, 1, true)
      msg = error_of(function() return kbl.linear(kbl.ones(2, 3), kbl.ones(2, 3), kbl.ones(3)) end)
      assert.matches('bias', msg)
   end)

   it('has float64 gradients with and without bias, 2-D and 3-D', function()
      H.gradcheck(kbl.linear, {H.leaf{4, 3}, H.leaf{2, 3}})
      H.gradcheck(kbl.linear, {H.leaf{4, 3}, H.leaf{2, 3}, H.leaf{2}})
      H.gradcheck(kbl.linear, {H.leaf{2, 4, 3}, H.leaf{5, 3}, H.leaf{5}})
      H.gradcheck(kbl.linear, {H.leaf{3}, H.leaf{2, 3}, H.leaf{2}})
   end)
end)

describe('softmax and log_softmax', function()
   it('match PyTorch along every dim', function()
      for d = 1, 3 do
         for _, name in ipairs{'softmax', 'log_softmax'} do
            local c = F[name .. '_dim' .. d]
            local x = t64(c.x)
            x.requires_grad = true
            local y = kbl[name](x, d)
            H.assert_close(y, c.out, 1e-12, name .. d)
            ;(y * t64(c.probe)):sum():backward()
            H.assert_close(x.grad, c.grad, 1e-10, name .. d .. ' grad')
            H.assert_close(kbl[name](x, d - 4), c.out, 1e-12, name .. ' negative dim')
         end
      end
   end)

   it('rows sum to 1, default to the last dim', function()
      local s = kbl.randn(4, 7):softmax()
      H.assert_close(s:sum(2), {1, 1, 1, 1}, 1e-6)
      H.assert_close(kbl.randn(3, 5):softmax(1):sum(1), {1, 1, 1, 1, 1}, 1e-6)
   end)

   it('are stable for large logits', function()
      local x = kbl.tensor{{1000, 1000, 0}, {-1000, -1000, -1000}}
      H.assert_close(x:softmax(2), {{0.5, 0.5, 0}, {1 / 3, 1 / 3, 1 / 3}}, 1e-6)
      H.assert_close(x:log_softmax(2), {{-math.log(2), -math.log(2), -1000 - math.log(2)},
         {-math.log(3), -math.log(3), -math.log(3)}}, 1e-6)
   end)

   it('refuse a bad dim, named as Lua counts', function()
      assert.matches('softmax: dimension 3 out of range', error_of(function() return kbl.ones(2, 2):softmax(3) end))
   end)

   it('have float64 gradients', function()
      local x = H.leaf{3, 4}
      H.gradcheck(function(a) return a:softmax(2) end, {x})
      H.gradcheck(function(a) return a:softmax(1) end, {x})
      H.gradcheck(function(a) return a:log_softmax(2) end, {x})
      H.gradcheck(function(a) return a:log_softmax(-3) end, {H.leaf{2, 3, 2}})
   end)
end)

-- every fixture ce_<mode>_<reduction>, ce_nd_* and ce_4d_mean
local function ce_opts(c)
   return {weight = c.weight and t64(c.weight), label_smoothing = c.label_smoothing,
           ignore_index = c.ignore_index, reduction = c.reduction}
end
local ce_names = {}
for name in pairs(F) do
   if name:match('^ce_') then ce_names[#ce_names + 1] = name end
end
table.sort(ce_names)

describe('cross_entropy', function()
   it('matches PyTorch in every mode and reduction, with its gradient', function()
      assert.is_true(#ce_names >= 25)
      for _, name in ipairs(ce_names) do
         local c = F[name]
         local x = t64(c.x)
         x.requires_grad = true
         local y = kbl.cross_entropy(x, i64(c.labels), ce_opts(c))
         H.assert_close(y, c.out, 1e-10, name)
         ;(y * (c.probe and t64(c.probe) or 1)):sum():backward()
         H.assert_close(x.grad, c.grad, 1e-10, name .. ' grad')
      end
   end)

   it('takes labels 1..C', function()
      local x = t64{{0, 0, 10}, {10, 0, 0}}
      local l = kbl.cross_entropy(x, i64{3, 1}):item()
      assert.is_true(l < 1e-4)
      local l2 = kbl.cross_entropy(x, i64{1, 3}):item()
      assert.is_true(l2 > 9)
      -- by hand: log(sum exp) - x_y
      local lse = math.log(2 + math.exp(10))
      H.assert_close(kbl.cross_entropy(x, i64{1, 3}, {reduction = 'none'}), {lse, lse - 0})
      -- int32 labels work too
      H.assert_close(kbl.cross_entropy(x, kbl.tensor({1, 3}, {dtype = 'int32'})), l2)
   end)

   it('works in float32, stable for large logits', function()
      local c = F.ce_all_mean
      H.assert_close(kbl.cross_entropy(kbl.tensor(c.x), i64(c.labels),
         {weight = kbl.tensor(c.weight), label_smoothing = c.label_smoothing}), c.out, 1e-5)
      local big = kbl.tensor{{1000, 0}, {0, 1000}}
      H.assert_close(kbl.cross_entropy(big, i64{1, 2}), 0)
      H.assert_close(kbl.cross_entropy(big, i64{2, 2}), 500)
   end)

   it('ignores rows labelled ignore_index, averaging over the rest', function()
      local x = t64{{1, 2}, {3, 1}, {0, 5}}
      local all = kbl.cross_entropy(x, i64{1, 2, 2}, {reduction = 'none'}):tolist()
      local r = kbl.cross_entropy(x, i64{1, -100, 2})
      H.assert_close(r, (all[1] + all[3]) / 2)
      r = kbl.cross_entropy(x, i64{1, 2, 2}, {ignore_index = 2, reduction = 'none'})
      H.assert_close(r, {all[1], 0, 0})
   end)

   it('names an out-of-range label as the caller wrote it', function()
      local x = kbl.randn(3, 4)
      local msg = error_of(function() return kbl.cross_entropy(x, i64{1, 5, 2}) end)
      assert.matches('label 5 at position 2 is out of range for 4 classes', msg)
      msg = error_of(function() return kbl.cross_entropy(x, i64{1, 2, 0}) end)
      assert.matches('label 0 at position 3', msg)
      msg = error_of(function() return kbl.cross_entropy(kbl.randn(2, 3, 2), i64{{1, 2}, {4, 1}}) end)
      assert.matches('label 4 at position [2, 1]', msg, 1, true)
   end)

   it('refuses mismatched labels, float labels and bad options', function()
      assert.matches('do not match', error_of(function() return kbl.cross_entropy(kbl.randn(3, 4), i64{1, 2}) end))
      assert.matches('int64', error_of(function() return kbl.cross_entropy(kbl.randn(3, 4), kbl.tensor{1, 2, 3}) end))
      assert.matches('reduction', error_of(function()
         return kbl.cross_entropy(kbl.randn(3, 4), i64{1, 2, 3}, {reduction = 'avg'}) end))
      assert.matches('label_smoothing', error_of(function()
         return kbl.cross_entropy(kbl.randn(3, 4), i64{1, 2, 3}, {label_smoothing = 1.5}) end))
      assert.matches('weights', error_of(function()
         return kbl.cross_entropy(kbl.randn(3, 4), i64{1, 2, 3}, {weight = kbl.ones(3)}) end))
   end)

   it('has float64 gradients w.r.t. the logits in every mode', function()
      local w = t64{0.5, 2, 1, 1.5}
      local lab = i64{1, 4, 2, 3, 4}
      local lab_ign = i64{1, 4, -100, 3, 2}
      local modes = {
         {}, {weight = w}, {label_smoothing = 0.2}, {ignore_index = 3},
         {weight = w, label_smoothing = 0.1, ignore_index = 4},
      }
      local x = H.leaf{5, 4}
      for _, red in ipairs{'mean', 'sum', 'none'} do
         for _, m in ipairs(modes) do
            local o = {weight = m.weight, label_smoothing = m.label_smoothing, ignore_index = m.ignore_index,
                       reduction = red}
            H.gradcheck(function(a) return kbl.cross_entropy(a, lab, o) end, {x})
         end
         H.gradcheck(function(a) return kbl.cross_entropy(a, lab_ign, {weight = w, reduction = red}) end, {x})
         H.gradcheck(function(a)
            return kbl.cross_entropy(a, i64{{1, 3, -100}, {2, 2, 1}}, {label_smoothing = 0.1, reduction = red})
         end, {H.leaf{2, 3, 3}})
         -- logits that are a transposed view
         H.gradcheck(function(a) return kbl.cross_entropy(a:t(), lab, {label_smoothing = 0.1, reduction = red}) end,
            {H.leaf{4, 5}})
      end
   end)
end)

describe('binary_cross_entropy_with_logits', function()
   for _, red in ipairs{'mean', 'sum', 'none'} do
      it('matches PyTorch (' .. red .. '), plain and with weight and pos_weight', function()
         for _, name in ipairs{'bce_' .. red, 'bce_w_' .. red} do
            local c = F[name]
            local x = t64(c.x)
            x.requires_grad = true
            local y = kbl.binary_cross_entropy_with_logits(x, t64(c.target), {weight = c.weight and t64(c.weight),
               pos_weight = c.pos_weight and t64(c.pos_weight), reduction = red})
            H.assert_close(y, c.out, 1e-10, name)
            ;(y * (c.probe and t64(c.probe) or 1)):sum():backward()
            H.assert_close(x.grad, c.grad, 1e-10, name .. ' grad')
         end
      end)
   end

   it('is stable for large logits', function()
      local r = kbl.binary_cross_entropy_with_logits(kbl.tensor{1000, -1000, 1000}, kbl.tensor{1, 0, 0},
         {reduction = 'none'})
      H.assert_close(r, {0, 0, 1000})
   end)

   it('refuses a target of another shape', function()
      local msg = error_of(function() return kbl.binary_cross_entropy_with_logits(kbl.ones(3, 2), kbl.ones(2, 3)) end)
      assert.matches('[2, 3]', msg, 1, true)
      assert.matches('[3, 2]', msg, 1, true)
   end)

   it('has float64 gradients w.r.t. logits, target and weights', function()
      local t = kbl.rand({4, 3}, f64)
      for _, red in ipairs{'mean', 'sum', 'none'} do
         H.gradcheck(function(x, tg, w, pw)
            return kbl.binary_cross_entropy_with_logits(x, tg, {weight = w, pos_weight = pw, reduction = red})
         end, {H.leaf({4, 3}, {scale = 3}), H.leaf{4, 3}, H.leaf{4, 3}, H.leaf{3}})
         H.gradcheck(function(x) return kbl.binary_cross_entropy_with_logits(x, t, {reduction = red}) end,
            {H.leaf{4, 3}})
      end
   end)
end)

describe('mse, l1 and huber losses', function()
   local cases = {mse = kbl.mse_loss, l1 = kbl.l1_loss, huber = kbl.huber_loss}

   it('match PyTorch in every reduction', function()
      for name, fn in pairs(cases) do
         for _, red in ipairs{'mean', 'sum', 'none'} do
            local c = F[name .. '_' .. red]
            local x = t64(c.x)
            x.requires_grad = true
            local y = fn(x, t64(c.target), {reduction = red})
            H.assert_close(y, c.out, 1e-10, name .. ' ' .. red)
            ;(y * (c.probe and t64(c.probe) or 1)):sum():backward()
            H.assert_close(x.grad, c.grad, 1e-10, name .. ' ' .. red .. ' grad')
         end
      end
      local c = F.huber_delta
      H.assert_close(kbl.huber_loss(t64(c.x), t64(c.target), {delta = c.delta}), c.out, 1e-10)
   end)

   it('by hand', function()
      local a, b = t64{0, 1, 4}, t64{1, 1, 1}
      H.assert_close(kbl.mse_loss(a, b), 10 / 3)
      H.assert_close(kbl.l1_loss(a, b, {reduction = 'sum'}), 4)
      H.assert_close(kbl.huber_loss(a, b, {reduction = 'none'}), {0.5, 0, 2.5})
   end)

   it('name both shapes when they differ', function()
      local msg = error_of(function() return kbl.mse_loss(kbl.ones(3), kbl.ones(3, 1)) end)
      assert.matches('mse_loss', msg)
      assert.matches('[3]', msg, 1, true)
      assert.matches('[3, 1]', msg, 1, true)
   end)

   it('have float64 gradients w.r.t. both inputs', function()
      for name, fn in pairs(cases) do
         for _, red in ipairs{'mean', 'sum', 'none'} do
            H.gradcheck(function(a, b) return fn(a, b, {reduction = red}) end,
               {H.leaf({3, 4}, {scale = 2}), H.leaf{3, 4}}, {tol = 1e-5})
            assert.is_string(name)
         end
      end
      H.gradcheck(function(a, b) return kbl.huber_loss(a, b, {delta = 0.3}) end, {H.leaf{3, 4}, H.leaf{3, 4}})
   end)
end)
