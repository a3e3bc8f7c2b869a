-- norm: batch_norm (training statistics, running statistics updated with
-- momentum, evaluation mode, affine or not, [N, C] and [N, C, H, W]), layer_norm
-- and group_norm, against hand-worked cases and PyTorch fixtures; float64
-- gradient checks for input, weight and bias; bad shapes.
local kbl = require 'kbl'
local H = require 'helper'
local F = require 'fixtures.conv'

local function from(f, dtype, grad)
   local t = kbl.tensor(f.data, {dtype = dtype or 'float64'}):reshape(f.shape):contiguous()
   if grad then t:requires_grad_() end
   return t
end

local function err_of(fn)
   local ok, err = pcall(fn)
   assert.is_false(ok, 'expected an error')
   return tostring(err)
end

describe('batch_norm', function()
   it('normalizes with batch statistics and updates the running ones when training', function()
      local x = kbl.tensor{{1, 10}, {3, 30}}
      local rm, rv = kbl.zeros{2}, kbl.ones{2}
      local y = kbl.batch_norm(x, rm, rv, nil, nil, {training = true, eps = 0})
      H.assert_close(y, {{-1, -1}, {1, 1}}, 1e-6)
      -- running_mean = 0.9 * 0 + 0.1 * mean; running_var uses the unbiased variance
      H.assert_close(rm, {0.2, 2.0}, 1e-6)
      H.assert_close(rv, {0.9 + 0.1 * 2, 0.9 + 0.1 * 200}, 1e-5)
      -- evaluation uses the running statistics and leaves them alone
      local ye = kbl.batch_norm(x, rm, rv, kbl.tensor{2, 1}, kbl.tensor{0, 5}, {eps = 0})
      H.assert_close(ye, {{2 * (1 - 0.2) / math.sqrt(1.1), 5 + (10 - 2) / math.sqrt(20.9)},
         {2 * (3 - 0.2) / math.sqrt(1.1), 5 + (30 - 2) / math.sqrt(20.9)}}, 1e-5)
      H.assert_close(rm, {0.2, 2.0}, 1e-6)
   end)

   it('matches PyTorch in training (with running stats), evaluation and [N, C] without them', function()
      local f = F.batch_norm
      local x, w, b = from(f.x, nil, true), from(f.w, nil, true), from(f.b, nil, true)
      local rm, rv = from(f.rm0), from(f.rv0)
      local y = kbl.batch_norm(x, rm, rv, w, b, {training = true, momentum = f.momentum})
      H.assert_close(y, from(f.y), 1e-10, 'training forward')
      H.assert_close(rm, from(f.rm1), 1e-12, 'running mean')
      H.assert_close(rv, from(f.rv1), 1e-12, 'running var')
      ;(y * from(f.probe)):sum():backward()
      H.assert_close(x.grad, from(f.gx), 1e-9, 'input grad')
      H.assert_close(w.grad, from(f.gw), 1e-10, 'weight grad')
      H.assert_close(b.grad, from(f.gb), 1e-10, 'bias grad')

      local xe, we, be = from(f.x_eval, nil, true), from(f.w_eval, nil, true), from(f.b_eval, nil, true)
      local ye = kbl.batch_norm(xe, rm, rv, we, be, {training = false})
      H.assert_close(ye, from(f.y_eval), 1e-10, 'eval forward')
      ;(ye * from(f.probe_eval)):sum():backward()
      H.assert_close(xe.grad, from(f.gx_eval), 1e-10, 'eval input grad')
      H.assert_close(we.grad, from(f.gw_eval), 1e-10, 'eval weight grad')
      H.assert_close(be.grad, from(f.gb_eval), 1e-10, 'eval bias grad')

      local xf = from(f.x_flat, nil, true)
      local yf = kbl.batch_norm(xf, nil, nil, nil, nil, {training = true})
      H.assert_close(yf, from(f.y_flat), 1e-10, '[N, C] forward')
      ;(yf * from(f.probe_flat)):sum():backward()
      H.assert_close(xf.grad, from(f.gx_flat), 1e-9, '[N, C] input grad')

      local y32 = kbl.batch_norm(from(f.x, 'float32'), nil, nil, from(f.w, 'float32'), from(f.b, 'float32'),
         {training = true})
      H.assert_close(y32, from(f.y), 1e-4, 'float32 forward')
   end)

   it('passes gradient checks in training and evaluation, affine or not', function()
      kbl.manual_seed(6)
      local x, w, b = H.leaf({3, 2, 2, 3}), H.leaf({2}), H.leaf({2})
      H.gradcheck(function(x_, w_, b_) return kbl.batch_norm(x_, nil, nil, w_, b_, {training = true}) end, {x, w, b})
      H.gradcheck(function(x_) return kbl.batch_norm(x_, nil, nil, nil, nil, {training = true}) end, {H.leaf({4, 3})})
      local rm, rv = kbl.randn({2}, {dtype = 'float64'}), kbl.rand({2}, {dtype = 'float64'}) + 0.5
      H.gradcheck(function(x_, w_, b_) return kbl.batch_norm(x_, rm, rv, w_, b_) end, {x, w, b})
   end)

   it('rejects bad arguments', function()
      local x = kbl.randn{4, 3, 2, 2}
      assert.matches('evaluation mode needs running_mean', err_of(function() kbl.batch_norm(x) end))
      assert.matches('weight [2] float32 must be [3]', err_of(function()
         kbl.batch_norm(x, nil, nil, kbl.ones{2}, nil, {training = true}) end), 1, true)
      assert.matches('more than one value per channel', err_of(function()
         kbl.batch_norm(kbl.randn{1, 3}, nil, nil, nil, nil, {training = true}) end))
      assert.matches('input must be %[N, C%]', err_of(function()
         kbl.batch_norm(kbl.randn{3}, nil, nil, nil, nil, {training = true}) end))
   end)
end)

describe('layer_norm', function()
   it('normalizes over the trailing dims', function()
      local y = kbl.layer_norm(kbl.tensor{{1, 2, 3}, {2, 2, 2}}, {3}, nil, nil, 1e-12)
      local s = math.sqrt(2 / 3)
      H.assert_close(y, {{-1 / s, 0, 1 / s}, {0, 0, 0}}, 1e-6)
      local y2 = kbl.layer_norm(kbl.tensor{{1, 2, 3}}, {3}, kbl.tensor{1, 2, 3}, kbl.tensor{1, 1, 1}, 0)
      H.assert_close(y2, {{1 - 1 / s, 1, 1 + 3 / s}}, 1e-6)
   end)

   it('matches PyTorch values and gradients', function()
      local f = F.layer_norm
      local x, w, b = from(f.x, nil, true), from(f.w, nil, true), from(f.b, nil, true)
      local y = kbl.layer_norm(x, {4, 5}, w, b)
      H.assert_close(y, from(f.y), 1e-10, 'forward')
      ;(y * from(f.probe)):sum():backward()
      H.assert_close(x.grad, from(f.gx), 1e-9, 'input grad')
      H.assert_close(w.grad, from(f.gw), 1e-10, 'weight grad')
      H.assert_close(b.grad, from(f.gb), 1e-10, 'bias grad')
   end)

   it('passes gradient checks, affine, bias only and plain', function()
      kbl.manual_seed(7)
      local x, w, b = H.leaf({2, 3, 4}), H.leaf({3, 4}), H.leaf({3, 4})
      H.gradcheck(function(x_, w_, b_) return kbl.layer_norm(x_, {3, 4}, w_, b_) end, {x, w, b})
      H.gradcheck(function(x_, b_) return kbl.layer_norm(x_, {3, 4}, nil, b_) end, {x, b})
      H.gradcheck(function(x_) return x_:layer_norm({4}) end, {x})
   end)

   it('rejects a normalized shape that does not end the input, and a wrong weight', function()
      local x = kbl.randn{2, 3, 4}
      assert.matches('input [2, 3, 4] does not end with normalized_shape [3]', err_of(function()
         kbl.layer_norm(x, {3}) end), 1, true)
      assert.matches('weight [4, 3] float32 must have the normalized shape', err_of(function()
         kbl.layer_norm(x, {3, 4}, kbl.ones{4, 3}) end), 1, true)
   end)
end)

describe('group_norm', function()
   it('matches PyTorch values and gradients', function()
      local f = F.group_norm
      local x, w, b = from(f.x, nil, true), from(f.w, nil, true), from(f.b, nil, true)
      local y = kbl.group_norm(x, f.groups, w, b)
      H.assert_close(y, from(f.y), 1e-10, 'forward')
      ;(y * from(f.probe)):sum():backward()
      H.assert_close(x.grad, from(f.gx), 1e-9, 'input grad')
      H.assert_close(w.grad, from(f.gw), 1e-10, 'weight grad')
      H.assert_close(b.grad, from(f.gb), 1e-10, 'bias grad')
   end)

   it('is layer_norm over (C, H, W) with one group', function()
      local x = kbl.randn({2, 4, 3, 3}, {dtype = 'float64'})
      H.assert_close(kbl.group_norm(x, 1), kbl.layer_norm(x, {4, 3, 3}), 1e-12)
   end)

   it('passes gradient checks for input, weight and bias', function()
      kbl.manual_seed(8)
      local x, w, b = H.leaf({2, 4, 2, 3}), H.leaf({4}), H.leaf({4})
      H.gradcheck(function(x_, w_, b_) return kbl.group_norm(x_, 2, w_, b_) end, {x, w, b})
      H.gradcheck(function(x_) return x_:group_norm(4) end, {x})
   end)

   it('rejects channels not divisible by the groups', function()
      assert.matches('input [2, 6, 3] float32 has 6 channels, not divisible by num_groups = 4', err_of(function()
         kbl.group_norm(kbl.randn{2, 6, 3}, 4) end), 1, true)
      assert.matches('weight [4] float32 must be [6]', err_of(function()
         kbl.group_norm(kbl.randn{2, 6, 3}, 3, kbl.ones{4}) end), 1, true)
   end)
end)
