-- losses: every loss against values computed by PyTorch
-- (spec/fixtures/make_optim_fixtures.py), gradients through the composed ones,
-- and error messages.
local kbl = require 'kbl'
local losses = require 'kbl.losses'
local H = require 'helper'
local F = dofile('spec/fixtures/loss_fixtures.lua')

local f64 = {dtype = 'float64'}
local function logits() return kbl.tensor(F.logits, f64) end
local function labels() return kbl.tensor(F.labels, {dtype = 'int64'}) end

describe('losses', function()
   it('CrossEntropy matches PyTorch: plain, smoothed, class-weighted, sum, none', function()
      H.assert_close(losses.CrossEntropy{}(logits(), labels()), F.ce, 1e-12)
      H.assert_close(losses.CrossEntropy{label_smoothing = 0.1}(logits(), labels()), F.ce_smooth, 1e-12)
      H.assert_close(losses.CrossEntropy{weight = F.class_weight}(logits(), labels()), F.ce_weight, 1e-12)
      H.assert_close(losses.CrossEntropy{weight = kbl.tensor(F.class_weight, f64), label_smoothing = 0.2}(
         logits(), labels()), F.ce_weight_smooth, 1e-12)
      H.assert_close(losses.CrossEntropy{reduction = 'sum'}(logits(), labels()), F.ce_sum, 1e-12)
      H.assert_close(losses.CrossEntropy{reduction = 'none'}(logits(), labels()), F.ce_none, 1e-12)
      assert.are.equal('cross_entropy', losses.CrossEntropy{}.name)
   end)

   it('CrossEntropy from probabilities', function()
      local ce = losses.CrossEntropy{from_logits = false}
      H.assert_close(ce(logits():softmax(2), labels()), F.ce_probs, 1e-9)
   end)

   it('CategoricalCrossEntropy matches PyTorch with dense targets', function()
      local dense = kbl.tensor(F.dense, f64)
      H.assert_close(losses.CategoricalCrossEntropy{}(logits(), dense), F.cce, 1e-12)
      H.assert_close(losses.CategoricalCrossEntropy{label_smoothing = 0.1}(logits(), dense), F.cce_smooth, 1e-12)
      H.assert_close(losses.CategoricalCrossEntropy{from_logits = false}(logits():softmax(2), dense), F.cce_probs, 1e-9)
      -- one-hot targets give the sparse loss
      local onehot = kbl.one_hot(labels(), 4):to('float64')
      H.assert_close(losses.CategoricalCrossEntropy{}(logits(), onehot), F.ce, 1e-12)
   end)

   it('BinaryCrossEntropy from logits and from probabilities', function()
      local bt = kbl.tensor(F.bt, f64)
      H.assert_close(losses.BinaryCrossEntropy{}(kbl.tensor(F.bx, f64), bt), F.bce_logits, 1e-12)
      H.assert_close(losses.BinaryCrossEntropy{from_logits = false}(kbl.tensor(F.bp, f64), bt), F.bce_probs, 1e-12)
   end)

   it('MSE, MAE and Huber match PyTorch', function()
      local p, t = kbl.tensor(F.rp, f64), kbl.tensor(F.rt, f64)
      H.assert_close(losses.MSE{}(p, t), F.mse, 1e-12)
      H.assert_close(losses.MAE{}(p, t), F.mae, 1e-12)
      H.assert_close(losses.Huber{}(p, t), F.huber, 1e-12)
      H.assert_close(losses.Huber{delta = 2}(p, t), F.huber_2, 1e-12)
      H.assert_close(losses.Huber{delta = 0.5, reduction = 'sum'}(p, t), F.huber_sum, 1e-12)
      assert.are.equal('huber', losses.Huber{}.name)
      -- [N] targets for [N, 1] predictions, and integer targets, are taken as they mean
      local p1 = kbl.tensor({{1}, {2}, {3}}, f64)
      H.assert_close(losses.MSE{}(p1, kbl.tensor({1, 1, 1}, {dtype = 'int64'})), (0 + 1 + 4) / 3, 1e-12)
   end)

   it('gradients flow through the composed losses (finite differences)', function()
      local dense = kbl.tensor(F.dense, f64)
      local bt = kbl.tensor(F.bt, f64)
      local cce = losses.CategoricalCrossEntropy{label_smoothing = 0.1, weight = F.class_weight}
      H.gradcheck(function(x) return cce(x, dense) end, {H.leaf({5, 4})})
      H.gradcheck(function(x) return losses.CategoricalCrossEntropy{from_logits = false}(x:softmax(2), dense) end,
         {H.leaf({5, 4})})
      H.gradcheck(function(x) return losses.BinaryCrossEntropy{from_logits = false}(x:sigmoid(), bt) end,
         {H.leaf({2, 3})})
      H.gradcheck(function(x) return losses.CrossEntropy{from_logits = false}(x:softmax(2), labels()) end,
         {H.leaf({5, 4})})
   end)

   it('get builds a loss from a name or spec', function()
      assert.are.equal('mse', losses.get('mse').name)
      assert.are.equal(2, losses.get{type = 'Huber', delta = 2}.delta)
      assert.has_error(function() losses.get('hinge') end)
   end)

   it('rejects unknown options, bad reductions and non-tensors', function()
      assert.has_error(function() losses.CrossEntropy{smoothing = 0.1} end,
         "losses.CrossEntropy: unknown option 'smoothing' (options: from_logits, label_smoothing, reduction)")
      assert.has_error(function() losses.MSE{reduction = 'avg'} end,
         "losses.MSE: reduction must be 'mean', 'sum' or 'none', got avg")
      assert.has_error(function() losses.MSE{}(kbl.zeros({2}), {1, 2}) end,
         'losses.MSE expects (prediction, target) tensors, got a tensor and table')
      local ok, err = pcall(function() losses.MSE{}(kbl.zeros({2, 3}), kbl.zeros({3, 2})) end)
      assert.is_false(ok)
      assert.matches('differ in shape', err)
   end)
end)
