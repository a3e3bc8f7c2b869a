-- blocks (what every block does): parameter naming and order, parameters()
-- and buffers(), train/eval, zero_grad, freeze/unfreeze by path pattern,
-- state_dict round trips and strict loading, summary counts against hand
-- counts, defaults by type reaching library-built blocks, to(), tostring,
-- error paths.
local kbl = require 'kbl'
local blocks = require 'kbl.blocks'
local H = require 'helper'

local function names(list)
   local out = {}
   for _, p in ipairs(list) do out[#out + 1] = p[1] end
   return out
end

local function small_model()
   return blocks.Model{
      backbone = blocks.Sequential{blocks.Conv2D{3, 3, padding = 1, name = 'conv'}, blocks.BatchNorm{name = 'bn'},
         blocks.Activation{'relu', name = 'act'}},
      neck = blocks.GlobalAvgPool2D{},
      head = blocks.Dense{4, name = 'fc'},
   }
end

describe('blocks: parameters and buffers', function()
   it('are named by path in a stable order', function()
      local m = small_model()
      m(kbl.randn{2, 2, 5, 5})
      assert.are.same({'backbone.conv.weight', 'backbone.conv.bias', 'backbone.bn.weight', 'backbone.bn.bias',
         'head.weight', 'head.bias'}, names(m:named_parameters()))
      assert.are.same({'backbone.bn.running_mean', 'backbone.bn.running_var', 'backbone.bn.num_batches_tracked'},
         names(m:named_buffers()))
      assert.are.equal(6, #m:parameters())
      assert.are.equal(3, #m:buffers())
      for _, p in ipairs(m:parameters()) do assert.is_true(p.requires_grad and p.is_leaf) end
   end)

   it('survive kbl.scope, in which they are made', function()
      local m = blocks.Dense{3}
      kbl.scope(function() return m(kbl.randn{2, 4}):sum() end)
      assert.is_false(m._p.weight:is_freed())
      assert.are.same({3, 4}, m._p.weight:size())
   end)

   it('train/eval reach every descendant; zero_grad clears every gradient', function()
      local m = small_model()
      local y = m(kbl.randn{2, 2, 5, 5})
      y:sum():backward()
      assert.is_not_nil(m:get('backbone.conv')._p.weight.grad)
      m:zero_grad()
      for _, p in ipairs(m:parameters()) do assert.is_nil(p.grad) end
      m:eval()
      assert.is_false(m:get('backbone.bn').training)
      m:train()
      assert.is_true(m:get('backbone.bn').training)
   end)
end)

describe('blocks: freeze and unfreeze', function()
   it('frozen parameters leave parameters() and get no gradient', function()
      local m = small_model()
      m(kbl.randn{2, 2, 5, 5})
      m:freeze('backbone')
      assert.are.equal(2, #m:parameters())
      assert.are.equal(6, #m:named_parameters())
      assert.are.same({'head.weight', 'head.bias'}, names(m:named_parameters{trainable = true}))
      m(kbl.randn{2, 2, 5, 5}):sum():backward()
      assert.is_nil(m:get('backbone.conv')._p.weight.grad)
      assert.is_not_nil(m:get('head')._p.weight.grad)
      m:unfreeze('backbone.bn.*')
      assert.are.same({'backbone.bn.weight', 'backbone.bn.bias', 'head.weight', 'head.bias'},
         names(m:named_parameters{trainable = true}))
      m:unfreeze()
      assert.are.equal(6, #m:parameters())
      m:freeze('*.bias')
      assert.are.same({'backbone.conv.weight', 'backbone.bn.weight', 'head.weight'},
         names(m:named_parameters{trainable = true}))
   end)

   it('applies to parameters made later, when the model builds', function()
      local m = small_model()
      m:freeze('backbone.*')
      m(kbl.randn{2, 2, 5, 5})
      assert.are.same({'head.weight', 'head.bias'}, names(m:named_parameters{trainable = true}))
      assert.is_false(m:get('backbone.conv')._p.weight.requires_grad)
   end)
end)

describe('blocks: state_dict', function()
   it('round-trips exactly into a fresh model', function()
      kbl.manual_seed(1)
      local a = small_model()
      a(kbl.randn{4, 2, 5, 5})   -- training: running statistics move
      kbl.manual_seed(2)
      local b = small_model()
      b(kbl.randn{1, 2, 5, 5})
      local sd = a:state_dict()
      local keys = {}
      for k in pairs(sd) do keys[#keys + 1] = k end
      assert.are.equal(9, #keys)
      b:load_state_dict(sd)
      for k, t in pairs(b:state_dict()) do assert.are.same(H.flat(sd[k]), H.flat(t), k) end
      a:eval(); b:eval()
      local x = kbl.randn{2, 2, 5, 5}
      assert.are.same(H.flat(a(x)), H.flat(b(x)))
   end)

   it('is strict by default, naming missing and unexpected keys and shape mismatches', function()
      local m = small_model()
      m(kbl.randn{1, 2, 5, 5})
      local sd = m:state_dict()
      sd['head.weight'] = nil
      sd['head.extra'] = kbl.zeros{2}
      sd['backbone.conv.bias'] = kbl.zeros{5}
      local before = H.flat(m:get('backbone.bn')._p.running_var)
      sd['backbone.bn.running_var'] = kbl.zeros{3}
      local ok, err = pcall(m.load_state_dict, m, sd)
      assert.is_false(ok)
      assert.matches('missing keys: head.weight', err, 1, true)
      assert.matches('unexpected keys: head.extra', err, 1, true)
      assert.matches('shape mismatches: backbone.conv.bias ([3] in the model, [5] given)', err, 1, true)
      assert.are.same(before, H.flat(m:get('backbone.bn')._p.running_var), 'nothing loaded')
      local report = m:load_state_dict(sd, {strict = false})
      assert.are.same({'head.weight'}, report.missing)
      assert.are.same({'head.extra'}, report.unexpected)
      assert.are.same({0, 0, 0}, H.flat(m:get('backbone.bn')._p.running_var))
   end)

   it('says when the model has not been built yet', function()
      local ok, err = pcall(function() small_model():load_state_dict({['head.weight'] = kbl.zeros{4, 3}}) end)
      assert.is_false(ok)
      assert.matches('not built yet (call the model on an input first)', err, 1, true)
   end)

   it("loads a PyTorch model's state dict as it is (Torch layouts and names)", function()
      -- written by spec/fixtures/make_optim_fixtures.py from a torch.nn.Sequential
      local t = kbl.load('spec/fixtures/torch_convnet.safetensors')
      local x, y = t.input, t.output
      t.input, t.output = nil, nil
      local m = blocks.Sequential{
         blocks.Conv2D{3, 3, padding = 1, name = 'conv'}, blocks.BatchNorm{name = 'bn'},
         blocks.Activation{'relu', name = 'act'},
         blocks.Conv2D{4, 3, stride = 2, padding = 1, use_bias = false, name = 'down'},
         blocks.Flatten{name = 'flat'}, blocks.Dense{5, name = 'fc'},
      }
      m(x)
      m:load_state_dict(t)
      m:eval()
      H.assert_close(m(x), y, 1e-5)
      assert.are.equal(3, m:get('bn')._p.num_batches_tracked:item())
   end)

   it('saves and loads safetensors files', function()
      local a = blocks.Dense{3}
      a(kbl.randn{1, 2})
      local path = os.tmpname()
      a:save(path)
      local b = blocks.Dense{3}
      b(kbl.randn{1, 2})
      b:load(path)
      os.remove(path)
      assert.are.same(H.flat(a._p.weight), H.flat(b._p.weight))
   end)
end)

describe('blocks: summary', function()
   it('counts parameters as by hand and shows output shapes', function()
      local m = blocks.Model{
         backbone = blocks.MLP{units = {16, 8}},
         head = blocks.ClassificationHead{3},
      }
      m(kbl.randn{5, 1, 4, 4})
      m:freeze('backbone.dense1')
      local text, counts = m:summary{print = false}
      local d1, d2, fc = 16 * 16 + 16, 8 * 16 + 8, 3 * 8 + 3
      assert.are.equal(d1 + d2 + fc, counts.total)
      assert.are.equal(d2 + fc, counts.trainable)
      assert.are.equal(d1, counts.non_trainable)
      assert.matches('Total params: ' .. (d1 + d2 + fc), text, 1, true)
      assert.matches('Trainable params: ' .. (d2 + fc), text, 1, true)
      assert.matches('Non%-trainable params: ' .. d1, text)
      assert.matches('dense1 %(Dense%)%s+%[5, 16%]%s+' .. d1, text)
      assert.matches('head %(ClassificationHead%)%s+%[5, 3%]%s+' .. fc, text)
      assert.matches('flatten %(Flatten%)%s+%[5, 16%]%s+0', text)
      local conv = blocks.Conv2D{4, 3}
      local _, c = conv:summary{print = false}
      assert.are.equal(0, c.total)
      assert.matches('not built', (conv:summary{print = false}))
   end)

   it('tostring shows the tree', function()
      local s = tostring(blocks.Sequential{blocks.Dense{4, activation = 'relu'}, blocks.Dropout{0.1}})
      assert.are.equal("Sequential {\n  (1): Dense{4, activation = 'relu'}\n  (2): Dropout{0.1}\n}", s)
   end)
end)

describe('blocks.defaults', function()
   after_each(function() blocks.reset_defaults() end)

   it('reach blocks built inside library code', function()
      blocks.defaults.Dense.kernel_init = 'zeros'
      blocks.defaults.Dense.bias_init = 'ones'
      local m = blocks.MLP{units = {3, 2}}
      m(kbl.randn{2, 4})
      for _, p in ipairs(m:named_parameters()) do
         local v = p[1]:match('weight$') and 0 or 1
         for _, x in ipairs(H.flat(p[2])) do assert.are.equal(v, x, p[1]) end
      end
      -- the block's own argument wins
      local d = blocks.Dense{2, kernel_init = 'ones'}
      d(kbl.randn{1, 2})
      assert.are.same({1, 1, 1, 1}, H.flat(d._p.weight))
      -- and a type's defaults reach only that type
      local c = blocks.ClassificationHead{2}
      c(kbl.randn{1, 3})
      assert.are.same({0, 0, 0, 0, 0, 0}, H.flat(c:get('fc')._p.weight))
   end)

   it('take whole tables, reset, and scoped defaults', function()
      blocks.defaults.MLP = {activation = 'tanh', dropout = 0.5}
      assert.are.equal('tanh', blocks.MLP{units = {2}}.opts.activation)
      assert.is_not_nil(blocks.MLP{units = {2}}:get('dropout1'))
      blocks.reset_defaults('MLP')
      assert.are.equal('relu', blocks.MLP{units = {2}}.opts.activation)
      blocks.defaults['blocks.Dense'] = {use_bias = false}   -- as configs name the type
      assert.is_false(blocks.Dense{2}.opts.use_bias)
      local inside = blocks.with_defaults({Dropout = {rate = 0.3}}, function() return blocks.Dropout{}.opts.rate end)
      assert.are.equal(0.3, inside)
      assert.are.equal(0.5, blocks.Dropout{}.opts.rate)
   end)

   it('refuse unknown types and options, naming the closest', function()
      local ok, err = pcall(function() blocks.defaults.Dense.kernel_intt = 'zeros' end)
      assert.is_false(ok)
      assert.matches("blocks.defaults.Dense: unknown option 'kernel_intt' (did you mean 'kernel_init'?)", err, 1, true)
      ok, err = pcall(function() blocks.defaults.Dence.units = 3 end)
      assert.is_false(ok)
      assert.matches("blocks.defaults: unknown block type 'Dence'", err, 1, true)
   end)
end)

describe('blocks: conversion and errors', function()
   it('to(dtype) converts parameters and buffers, keeping them trainable leaves', function()
      local m = small_model()
      m(kbl.randn{1, 2, 5, 5})
      m:freeze('head')
      m:to('float64')
      assert.are.equal('float64', m:get('backbone.conv')._p.weight.dtype)
      assert.are.equal('float64', m:get('backbone.bn')._p.running_mean.dtype)
      assert.are.equal('int64', m:get('backbone.bn')._p.num_batches_tracked.dtype)
      assert.are.equal(4, #m:parameters())
      assert.is_false(m:get('head')._p.weight.requires_grad)
      assert.are.same({2, 4}, m(kbl.randn({2, 2, 5, 5}, {dtype = 'float64'})):size())
      assert.are.equal(m, m:to('cpu'))
   end)

   it('errors in forward name the block path', function()
      local m = small_model()
      m(kbl.randn{1, 2, 5, 5})
      local ok, err = pcall(m, kbl.randn{1, 3, 5, 5})
      assert.is_false(ok)
      assert.matches("blocks: in Conv2D 'backbone.conv': ", err, 1, true)
   end)

   it('options are checked when a block is made', function()
      assert.has_error(function() blocks.Dense{3, 4} end,
         'blocks.Dense takes 1 positional argument (units), got 2')
      assert.has_error(function() blocks.Dense{3, units = 4} end,
         "blocks.Dense: option 'units' given twice (by position and by name)")
   end)
end)
