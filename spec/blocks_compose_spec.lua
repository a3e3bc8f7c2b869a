-- blocks (compositions and ready-made parts): Sequential, Residual, Branches,
-- Lambda, Model (predict runs all five parts), MLP, ConvNet, ResNet,
-- ClassificationHead, RegressionHead, blocks.build; shapes, parameter paths
-- and gradients through them.
local kbl = require 'kbl'
local blocks = require 'kbl.blocks'
local H = require 'helper'

local f64 = {dtype = 'float64'}

local function names(m)
   local out = {}
   for _, p in ipairs(m:named_parameters()) do out[#out + 1] = p[1] end
   return out
end

local function with_params(m, ...)
   local inputs = {...}
   for _, p in ipairs(m:parameters()) do inputs[#inputs + 1] = p end
   return inputs
end

describe('blocks.Sequential', function()
   it('runs children in order, named by position or by their name', function()
      local m = blocks.Sequential{blocks.Dense{4, activation = 'relu'}, blocks.Dense{2, name = 'out'}}
      assert.are.same({3, 2}, m(kbl.randn{3, 5}):size())
      assert.are.same({'1.weight', '1.bias', 'out.weight', 'out.bias'}, names(m))
      m:append(blocks.Activation{'softmax'})
      H.assert_close(m(kbl.randn{3, 5}):sum(2), {1, 1, 1}, 1e-6)
      assert.are.equal(m:get('out'), m:children()[2])
   end)

   it('passes gradients through every child (finite differences)', function()
      kbl.manual_seed(1)
      local m = blocks.Sequential{blocks.Dense{3, activation = 'tanh'}, blocks.LayerNorm{}, blocks.Dense{2}}
      local x = H.leaf({2, 4})
      m(x)
      H.gradcheck(function(x_) return m(x_) end, with_params(m, x))
   end)

   it('refuses two children of one name', function()
      assert.has_error(function() blocks.Sequential{blocks.Dense{2, name = 'a'}, blocks.Dense{2, name = 'a'}} end)
   end)
end)

describe('blocks.Residual', function()
   it('adds the input when the body keeps the shape', function()
      local body = blocks.Dense{4}
      local r = blocks.Residual{body}
      local x = kbl.randn({2, 4}, f64)
      H.assert_close(r(x), x + body(x), 1e-12)
      assert.is_nil(r:get('projection'))
   end)

   it('projects the shortcut when the shape changes (Dense, or 1x1 Conv2D with stride)', function()
      local r = blocks.Residual{blocks.Dense{6}, activation = 'relu'}
      local x = kbl.randn({2, 4}, f64)
      local y = r(x)
      assert.are.same({2, 6}, y:size())
      assert.are.same({6, 4}, r:get('projection')._p.weight:size())
      H.assert_close(y, (r:get('projection')(x) + r:get('body')(x)):relu(), 1e-12)
      local c = blocks.Residual{blocks.Conv2D{8, 3, stride = 2, padding = 1}}
      assert.are.same({2, 8, 3, 3}, c(kbl.randn{2, 4, 6, 6}):size())
      assert.are.same({8, 4, 1, 1}, c:get('projection')._p.weight:size())
      assert.has_error(function() blocks.Residual{blocks.Dense{3}, projection = false}(kbl.randn{1, 2}) end)
   end)

   it('passes gradients through body and projection (finite differences)', function()
      kbl.manual_seed(2)
      local r = blocks.Residual{blocks.Dense{3, activation = 'tanh'}, blocks.Dense{5}}
      local x = H.leaf({2, 4})
      r(x)
      assert.are.same({'body.1.weight', 'body.1.bias', 'body.2.weight', 'body.2.bias', 'projection.weight',
         'projection.bias'}, names(r))
      H.gradcheck(function(x_) return r(x_) end, with_params(r, x))
   end)
end)

describe('blocks.Branches and Lambda', function()
   it('join parallel outputs by concat, add, stack, list or a function', function()
      local a, b = blocks.Dense{2}, blocks.Dense{3}
      local x = kbl.randn({4, 5}, f64)
      local br = blocks.Branches{a, b}
      assert.are.same({4, 5}, br(x):size())
      H.assert_close(br(x), kbl.cat({a(x), b(x)}, 2), 1e-12)
      local c, d = blocks.Dense{3}, blocks.Dense{3}
      H.assert_close(blocks.Branches{c, d, join = 'add'}(x), c(x) + d(x), 1e-12)
      assert.are.same({4, 2, 3}, blocks.Branches{c, d, join = 'stack'}(x):size())
      assert.are.equal(2, #blocks.Branches{c, d, join = 'list'}(x))
      local f = blocks.Branches{c, function(t) return t:sum(2, true) end, join = function(p, q) return p * q end}
      H.assert_close(f(x), c(x) * x:sum(2, true), 1e-12)
      assert.has_error(function() blocks.Branches{c, join = 'max'} end)
   end)

   it('pass gradients (finite differences)', function()
      kbl.manual_seed(3)
      local square = blocks.Lambda{function(t) return t:square() end}
      local br = blocks.Branches{blocks.Dense{2, activation = 'sigmoid'}, square}
      local x = H.leaf({2, 3})
      br(x)
      H.gradcheck(function(x_) return br(x_) end, with_params(br, x))
   end)
end)

describe('blocks.Model', function()
   it('trains backbone, neck and head; predict adds preprocess and postprocess', function()
      kbl.manual_seed(4)
      local m = blocks.Model{
         preprocess = function(raw) return raw / 255 end,
         backbone = blocks.MLP{units = {8}},
         neck = blocks.Dropout{0.5},
         head = blocks.ClassificationHead{3},
         postprocess = function(logits) return logits:argmax(2) end,
      }
      local raw = kbl.rand({4, 6}) * 255
      local logits = m(raw / 255)
      assert.are.same({4, 3}, logits:size())
      assert.are.equal(m.backbone, m:get('backbone'))
      assert.is_true(m.training)
      local labels = m:predict(raw)
      assert.are.equal('int64', labels.dtype)
      assert.is_true(m.training, 'predict restores the training mode')
      assert.is_false(labels.requires_grad)
      -- predict runs in eval mode: no dropout, so it equals the eval forward
      m:eval()
      assert.are.same(H.flat(m(raw / 255):argmax(2)), H.flat(labels))
      assert.are.same(H.flat(m:prepare(raw)), H.flat(raw / 255))
   end)

   it('names parameters by part', function()
      local m = blocks.Model{backbone = blocks.ConvNet{{4}}, head = blocks.ClassificationHead{2}}
      m(kbl.randn{2, 1, 6, 6})
      assert.are.same({'backbone.stage1.conv.weight', 'backbone.stage1.bn.weight', 'backbone.stage1.bn.bias',
         'head.fc.weight', 'head.fc.bias'}, names(m))
      assert.has_error(function() blocks.Model{} end)
   end)
end)

describe('blocks ready-made parts', function()
   it('MLP stacks Dense layers with activation and dropout', function()
      local m = blocks.MLP{units = {8, 4}, dropout = 0.2}
      assert.are.same({3, 4}, m(kbl.randn{3, 2, 5}):size())
      assert.are.same({'dense1.weight', 'dense1.bias', 'dense2.weight', 'dense2.bias'}, names(m))
      assert.is_not_nil(m:get('dropout1'))
      m:eval()
      assert.is_true(m(kbl.randn{3, 10}):min():item() >= 0, 'relu after the last layer')
      local logits = blocks.MLP{units = {8, 3}, activate_last = false}
      logits:eval()
      kbl.manual_seed(5)
      assert.is_true(logits(kbl.randn{50, 10}):min():item() < 0, 'a linear last layer')
   end)

   it('ConvNet stages: conv-bn-act-pool, paths stage1.conv.weight', function()
      local c = blocks.ConvNet{{4, 8}, convs = 2}
      assert.are.same({2, 8, 2, 2}, c(kbl.randn{2, 3, 8, 8}):size())
      assert.are.equal('stage2.conv2.weight', names(c)[10])
      assert.are.same({8, 8, 3, 3}, c:get('stage2.conv2')._p.weight:size())
      assert.are.same({2, 4, 8, 8}, blocks.ConvNet{{4}, pool = false, batch_norm = false}(kbl.randn{2, 3, 8, 8}):size())
   end)

   it('ResNet downsamples 28x28 and 32x32 inputs by 4 with projected shortcuts', function()
      kbl.manual_seed(6)
      local r = blocks.ResNet{filters = {4, 8, 16}, blocks = {1, 2, 1}}
      assert.are.same({2, 16, 7, 7}, r(kbl.randn{2, 1, 28, 28}):size())
      local r2 = blocks.ResNet{filters = {4, 8}, blocks = 1}
      assert.are.same({1, 8, 16, 16}, r2(kbl.randn{1, 3, 32, 32}):size())
      assert.is_not_nil(r:get('stage2.block1.projection.conv'))
      assert.is_nil(r:get('stage2.block2.projection'))
      assert.is_nil(r:get('stage1.block1.projection'))
   end)

   it('ResNet passes gradients (finite differences, a tiny one)', function()
      kbl.manual_seed(7)
      local r = blocks.ResNet{filters = {2, 3}, blocks = 1}
      local x = H.leaf({2, 1, 4, 4})
      r(x)
      local ps = r:parameters()
      H.gradcheck(function(x_) return r(x_) end, {x, ps[1], ps[#ps - 2]}, {tol = 1e-4})
   end)

   it('MLP, ConvNet and the heads in a Model pass gradients (finite differences)', function()
      kbl.manual_seed(8)
      local m = blocks.Model{backbone = blocks.MLP{units = {4, 3}, activation = 'tanh'},
         head = blocks.RegressionHead{2, hidden = {3}, activation = 'tanh'}}
      local x = H.leaf({2, 5})
      m(x)
      H.gradcheck(function(x_) return m(x_) end, with_params(m, x))
      local c = blocks.Model{backbone = blocks.ConvNet{{2}, batch_norm = false, activation = 'tanh'},
         head = blocks.ClassificationHead{3}}
      local xi = H.leaf({2, 1, 4, 4})
      c(xi)
      H.gradcheck(function(x_) return c(x_) end, with_params(c, xi))
   end)

   it('heads pool, flatten and map to classes or outputs', function()
      local h = blocks.ClassificationHead{5, hidden = {7}, dropout = 0.1}
      assert.are.same({2, 5}, h(kbl.randn{2, 3, 4, 4}):size())
      assert.are.same({'hidden1.weight', 'hidden1.bias', 'fc.weight', 'fc.bias'}, names(h))
      assert.are.same({3, 1}, blocks.RegressionHead{}(kbl.randn{3, 6}):size())
      assert.are.same({3, 2}, blocks.RegressionHead{2}(kbl.randn{3, 2, 3}):size())
      -- num_classes comes from the data's meta in training (spec/fit_spec.lua); without data it is needed
      assert.has_error(function() blocks.ClassificationHead{}(kbl.randn{2, 3}) end)
      assert.has_error(function() blocks.ClassificationHead{0} end)
   end)
end)

describe('blocks.build', function()
   it('builds nested specs into blocks', function()
      local m = blocks.build{type = 'Model',
         backbone = {type = 'Sequential', {type = 'Flatten'}, {type = 'Dense', units = 6, activation = 'relu'}},
         head = {type = 'ClassificationHead', num_classes = 3}}
      assert.are.same({2, 3}, m(kbl.randn{2, 2, 2}):size())
      assert.are.same({'backbone.2.weight', 'backbone.2.bias', 'head.fc.weight', 'head.fc.bias'}, names(m))
      local ok, err = pcall(blocks.build, {type = 'Dens', units = 2})
      assert.is_false(ok)
      assert.matches("unknown block type 'Dens' (did you mean 'Dense'?)", err, 1, true)
      ok, err = pcall(blocks.build, {type = 'Dense', unit = 2})
      assert.is_false(ok)
      assert.matches("blocks.Dense: unknown option 'unit' (did you mean 'units'?)", err, 1, true)
   end)
end)
