-- blocks (layers): Dense, Activation, Flatten, Reshape, Identity, Lambda,
-- Embedding, Dropout: output shapes, parameter layouts and names, float64
-- finite-difference gradients (parameters included), train/eval behaviour;
-- initializers and regularizers.
local kbl = require 'kbl'
local blocks = require 'kbl.blocks'
local H = require 'helper'

local f64 = {dtype = 'float64'}

-- the parameters of a built block as float64 leaves for H.gradcheck
local function leaves(m)
   local out = {}
   for _, p in ipairs(m:parameters()) do out[#out + 1] = p end
   return out
end

describe('blocks.Dense', function()
   it('is built on its first input with weight [out, in] and bias [out]', function()
      kbl.manual_seed(1)
      local d = blocks.Dense{5}
      assert.is_false(d:is_built())
      local y = d(kbl.randn{3, 4})
      assert.are.same({3, 5}, y:size())
      assert.are.same({5, 4}, d._p.weight:size())
      assert.are.same({5}, d._p.bias:size())
      local names = {}
      for _, p in ipairs(d:named_parameters()) do names[#names + 1] = p[1] end
      assert.are.same({'weight', 'bias'}, names)
      assert.is_true(d._p.weight.requires_grad and d._p.weight.is_leaf)
      -- y = x W^T + b
      local x = kbl.randn{2, 4}
      H.assert_close(d(x), x:matmul(d._p.weight:t()) + d._p.bias, 1e-6)
   end)

   it('works over the last dim of [N, T, F] inputs and without bias', function()
      local d = blocks.Dense{3, use_bias = false}
      assert.are.same({2, 7, 3}, d(kbl.randn{2, 7, 4}):size())
      assert.are.equal(1, #d:parameters())
   end)

   it('passes gradients to its input and parameters (finite differences)', function()
      kbl.manual_seed(2)
      local d = blocks.Dense{3, activation = 'tanh'}
      local x = H.leaf({4, 5})
      d(x)
      assert.are.equal('float64', d._p.weight.dtype)
      local inputs = {x}
      for _, p in ipairs(leaves(d)) do inputs[#inputs + 1] = p end
      H.gradcheck(function(x_) return d(x_) end, inputs)
   end)

   it('checks its options and its input', function()
      assert.has_error(function() blocks.Dense{} end,
         "blocks.Dense needs the option 'units' (blocks.Dense{units, ...})")
      assert.has_error(function() blocks.Dense{0} end, 'blocks.Dense: units must be a positive whole number, got 0')
      assert.has_error(function() blocks.Dense{4, unit = 3} end,
         "blocks.Dense: unknown option 'unit' (did you mean 'units'?) (options: activation, bias_init, "
         .. 'bias_regularizer, kernel_init, kernel_regularizer, name, units, use_bias)')
      assert.has_error(function() blocks.Dense{4, activation = 'rleu'} end)
      local d = blocks.Dense{2}
      d(kbl.randn{1, 3})
      local ok, err = pcall(d, kbl.randn{1, 4})
      assert.is_false(ok)
      assert.matches("blocks: in Dense 'Dense': linear: input [1, 4] float32 does not match weight [2, 3]",
         err, 1, true)
   end)
end)

describe('blocks.Activation', function()
   it('applies each named activation', function()
      local x = kbl.tensor({{-1.5, 0.5, 2}}, f64)
      local expect = {relu = x:relu(), sigmoid = x:sigmoid(), tanh = x:tanh(), gelu = x:gelu(), elu = x:elu(),
         silu = x:silu(), softplus = x:softplus(), softmax = x:softmax(2), linear = x}
      for name, e in pairs(expect) do H.assert_close(blocks.Activation{name}(x), e, 1e-12, name) end
      H.assert_close(blocks.Activation{function(t) return t * 2 end}(x), x * 2, 1e-12)
   end)

   it('offers every activation of the op table (core/ops_unary.def)', function()
      local x, n = kbl.tensor({{-1.5, 0.5, 2}}, f64), 0
      for _, u in ipairs(require('kbl.ops.elementwise').unary_ops) do
         if u.kind == 'activation' then
            H.assert_close(blocks.Activation{u.name}(x), kbl[u.name](x), 0, u.name)
            n = n + 1
         end
      end
      assert.is_true(n >= 9, 'activations: ' .. n)
   end)

   it('passes gradients (finite differences)', function()
      for _, name in ipairs{'relu', 'gelu', 'log_softmax', 'leaky_relu'} do
         local x = H.leaf({3, 4})
         H.gradcheck(function(x_) return blocks.Activation{name}(x_) end, {x})
      end
   end)

   it('names the valid activations for an unknown one', function()
      local ok, err = pcall(blocks.Activation, {'rleu'})
      assert.is_false(ok)
      assert.matches("unknown activation 'rleu' (did you mean 'relu'?)", err, 1, true)
   end)
end)

describe('blocks.Flatten, Reshape, Identity, Lambda', function()
   it('reshape as asked and pass gradients', function()
      local x = H.leaf({2, 3, 2, 2})
      assert.are.same({2, 12}, blocks.Flatten{}(x):size())
      assert.are.same({2, 3, 4}, blocks.Flatten{3}(x):size())
      assert.are.same({2, 4, 3}, blocks.Reshape{{4, -1}}(x):size())
      assert.are.same({2, 3, 2, 2}, blocks.Identity{}(x):size())
      local l = blocks.Lambda{function(t) return t:mean(2) end, name = 'pool'}
      assert.are.same({2, 2, 2}, l(x):size())
      H.gradcheck(function(x_) return blocks.Reshape{{12}}(x_) * blocks.Flatten{}(x_) end, {x})
      H.gradcheck(function(x_) return l(x_) end, {x})
   end)
end)

describe('blocks.Embedding', function()
   it('looks up rows by 1-based indices; the padding row starts at zero and gets no gradient', function()
      kbl.manual_seed(3)
      local e = blocks.Embedding{6, 3, padding_idx = 2}
      local idx = kbl.tensor({{1, 2}, {6, 2}}, {dtype = 'int64'})
      local y = e(idx)
      assert.are.same({2, 2, 3}, y:size())
      assert.are.same({6, 3}, e._p.weight:size())
      H.assert_close(e._p.weight[2], {0, 0, 0}, 0)
      H.assert_close(y[2][1], e._p.weight[6], 0)
      y:sum():backward()
      H.assert_close(e._p.weight.grad[2], {0, 0, 0}, 0)
      H.assert_close(e._p.weight.grad[1], {1, 1, 1}, 0)
   end)

   it('passes gradients to its table (finite differences)', function()
      local e = blocks.Embedding{5, 2, dtype = 'float64'}
      local idx = kbl.tensor({3, 1, 3, 5}, {dtype = 'int64'})
      e(idx)
      H.gradcheck(function() return e(idx) end, leaves(e))
   end)
end)

describe('blocks.Dropout', function()
   it('drops and rescales while training and is the identity in eval mode', function()
      kbl.manual_seed(4)
      local d = blocks.Dropout{0.25}
      local x = kbl.ones({200, 50})
      local y = d(x)
      local zeros = kbl.eq(y, 0):to('float32'):mean():item()
      assert.is_true(math.abs(zeros - 0.25) < 0.02, 'dropped share ' .. zeros)
      local kept = y:sum():item() / (y:numel() * (1 - zeros))
      H.assert_close(kept, 1 / 0.75, 1e-5)
      d:eval()
      assert.is_false(d.training)
      H.assert_close(d(x), x, 0)
      -- spatial dropout drops whole channels
      local s = blocks.Dropout{0.5, spatial = true}
      local z = s(kbl.ones({4, 8, 3, 3}))
      for n = 1, 4 do
         for c = 1, 8 do
            local ch = z[n][c]
            assert.is_true(ch:max():item() == ch:min():item())
         end
      end
   end)

   it('passes gradients through the kept elements (finite differences, fixed masks)', function()
      local d = blocks.Dropout{0.3}
      local x = H.leaf({4, 5})
      H.gradcheck(function(x_)
         kbl.manual_seed(9)
         return d(x_)
      end, {x})
   end)

   it('checks its rate', function()
      assert.has_error(function() blocks.Dropout{1} end, 'blocks.Dropout: rate must be a number in [0, 1), got 1')
   end)
end)

describe('blocks.initializers', function()
   local I = blocks.initializers
   local function stats(t)
      local m = t:mean():item()
      local sd = t:std():item()
      local lo, hi = t:min():item(), t:max():item()
      return m, sd, lo, hi
   end

   it('draw with the variances their names promise', function()
      kbl.manual_seed(5)
      local fans = {fan_in = 200, fan_out = 100}
      local n = {200, 400}
      local _, sd, lo, hi = stats(I.make('glorot_uniform', n, 'float64', fans))
      local lim = math.sqrt(6 / 300)
      assert.is_true(lo >= -lim and hi <= lim and math.abs(sd - lim / math.sqrt(3)) < 0.01 * lim)
      _, sd = stats(I.make('glorot_normal', n, 'float64', fans))
      assert.is_true(math.abs(sd - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300))
      _, sd, lo, hi = stats(I.make('he_uniform', n, 'float64', fans))
      lim = math.sqrt(6 / 200)
      assert.is_true(lo >= -lim and hi <= lim and math.abs(sd - lim / math.sqrt(3)) < 0.02 * lim)
      _, sd = stats(I.make('he_normal', n, 'float64', fans))
      assert.is_true(math.abs(sd - math.sqrt(2 / 200)) < 0.02 * math.sqrt(2 / 200))
      _, sd = stats(I.make('lecun_normal', n, 'float64', fans))
      assert.is_true(math.abs(sd - math.sqrt(1 / 200)) < 0.02 * math.sqrt(1 / 200))
      local m
      m, sd = stats(I.make({'normal', std = 0.02}, n, 'float64', fans))
      assert.is_true(math.abs(sd - 0.02) < 0.001 and math.abs(m) < 0.001)
      _, _, lo, hi = stats(I.make({'uniform', a = 2, b = 3}, n, 'float64', fans))
      assert.is_true(lo >= 2 and hi <= 3 and hi - lo > 0.99)
      H.assert_close(I.make('zeros', {3}, 'float64'), {0, 0, 0}, 0)
      H.assert_close(I.make('ones', {3}, 'float64'), {1, 1, 1}, 0)
   end)

   it('orthogonal gives orthonormal rows (or columns)', function()
      kbl.manual_seed(6)
      local w = I.make('orthogonal', {4, 6}, 'float64')
      H.assert_close(w:matmul(w:t()), kbl.eye(4, f64), 1e-12)
      local v = I.make({'orthogonal', gain = 2}, {6, 3}, 'float64')
      H.assert_close(v:t():matmul(v), kbl.eye(3, f64) * 4, 1e-12)
      local c = I.make('orthogonal', {3, 2, 2, 2}, 'float64'):reshape({3, 8})
      H.assert_close(c:matmul(c:t()), kbl.eye(3, f64), 1e-12)
   end)

   it("come from kbl's seeded generator", function()
      kbl.manual_seed(7)
      local a = blocks.Dense{4}
      a(kbl.zeros({1, 3}))
      kbl.manual_seed(7)
      local b = blocks.Dense{4}
      b(kbl.zeros({1, 3}))
      assert.are.same(H.flat(a._p.weight), H.flat(b._p.weight))
   end)

   it('name the valid initializers for an unknown one', function()
      local ok, err = pcall(blocks.Dense, {3, kernel_init = 'he_norml'})
      assert.is_false(ok)
      assert.matches("unknown initializer 'he_norml' (did you mean 'he_normal'?)", err, 1, true)
   end)
end)

describe('blocks.regularizers', function()
   it('l1 and l2 on kernels and biases add up in regularization_loss', function()
      local m = blocks.Sequential{
         blocks.Dense{3, kernel_regularizer = {'l2', 0.1}, bias_init = 'ones', bias_regularizer = 'l1'},
         blocks.Dense{2, kernel_regularizer = {l1 = 0.01, l2 = 0.02}},
         blocks.Dense{2},
      }
      assert.is_nil(blocks.Dense{2}:regularization_loss())
      m(kbl.randn({2, 4}, f64))
      local w1, b1, w2 = m:get('1')._p.weight, m:get('1')._p.bias, m:get('2')._p.weight
      local expect = 0.1 * w1:square():sum():item() + 0.01 * b1:abs():sum():item()
         + 0.01 * w2:abs():sum():item() + 0.02 * w2:square():sum():item()
      H.assert_close(m:regularization_loss(), expect, 1e-12)
      -- and it is differentiable
      H.gradcheck(function() return m:regularization_loss() end, {w1, b1, w2})
   end)
end)
