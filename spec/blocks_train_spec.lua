-- blocks (training end to end): a Model of backbone, neck and head learns a
-- generated task to a set accuracy with optim, losses and metrics; a frozen
-- part keeps its weights bit-identical through training; a ConvNet model
-- learns a generated image task; model and optimizer state resume exactly.
local kbl = require 'kbl'
local blocks = require 'kbl.blocks'
local optim = require 'kbl.optim'
local losses = require 'kbl.losses'
local metrics = require 'kbl.metrics'
local H = require 'helper'

-- Three classes on rings of radius 1, 2 and 3 (with noise), in 2-D: a task a
-- linear model cannot solve. Labels 1..3.
local function rings(n, seed)
   kbl.manual_seed(seed)
   local r = kbl.randint(1, 4, {n})
   local angle = kbl.rand({n}) * (2 * math.pi)
   local radius = r:to('float32') + kbl.randn({n}) * 0.15
   local x = kbl.stack({radius * angle:cos(), radius * angle:sin()}, 2)
   return x, r
end

local function train(model, opt, x, y, steps, batch)
   local ce = losses.CrossEntropy{}
   local n = x:size(1)
   for s = 1, steps do
      local i = ((s - 1) * batch) % n + 1
      local len = math.min(batch, n - i + 1)
      kbl.scope(function()
         model:zero_grad()
         local loss = ce(model(x:narrow(1, i, len)), y:narrow(1, i, len))
         local reg = model:regularization_loss()
         if reg then loss = loss + reg end
         loss:backward()
         opt:step(model:parameters())
      end)
   end
end

local function accuracy(model, x, y)
   local acc = metrics.Accuracy{}
   model:eval()
   kbl.no_grad(function() acc:update(model(x), y) end)
   model:train()
   return acc:result()
end

local function snapshot(m)
   local out = {}
   for _, p in ipairs(m:named_parameters()) do out[p[1]] = H.flat(p[2]) end
   return out
end

describe('blocks training', function()
   it('a Model of backbone, neck and head learns the rings task to 95%', function()
      kbl.manual_seed(1)
      local model = blocks.Model{
         backbone = blocks.MLP{units = {32, 32}},
         neck = blocks.LayerNorm{},
         head = blocks.ClassificationHead{3, dropout = 0.1},
      }
      local x, y = rings(600, 2)
      local xt, yt = rings(300, 3)
      train(model, optim.Adam{lr = 0.01}, x, y, 400, 60)
      local acc = accuracy(model, xt, yt)
      assert.is_true(acc >= 0.95, 'test accuracy ' .. acc)
   end)

   it('a frozen backbone keeps its weights bit-identical while the head trains', function()
      kbl.manual_seed(4)
      local model = blocks.Model{backbone = blocks.MLP{units = {16}}, head = blocks.ClassificationHead{3}}
      local x, y = rings(200, 5)
      model(x)
      model:freeze('backbone')
      local before = snapshot(model)
      train(model, optim.AdamW{lr = 0.05, weight_decay = 0.1}, x, y, 20, 50)
      local after = snapshot(model)
      for name, v in pairs(before) do
         if name:match('^backbone') then
            assert.are.same(v, after[name], name .. ' changed')
         else
            assert.are_not.same(v, after[name], name .. ' did not train')
         end
      end
   end)

   it('a ConvNet model learns where the bright square is', function()
      -- 4 classes: a 3x3 bright square in one quadrant of a noisy 8x8 image
      kbl.manual_seed(6)
      local n = 256
      local labels = kbl.randint(1, 5, {n})
      local imgs = kbl.randn({n, 1, 8, 8}) * 0.3
      local lt = labels:tolist()
      for i = 1, n do
         local q = lt[i] - 1
         local r0, c0 = (q >= 2) and 5 or 1, (q % 2 == 1) and 5 or 1
         local patch = imgs[i][1]:narrow(1, r0, 3):narrow(2, c0, 3)
         patch:copy_(patch + 1.0)
      end
      local model = blocks.Model{backbone = blocks.ConvNet{{4, 8}}, head = blocks.ClassificationHead{4}}
      train(model, optim.Adam{lr = 0.02}, imgs, labels, 60, 32)
      local acc = accuracy(model, imgs, labels)
      assert.is_true(acc >= 0.9, 'accuracy ' .. acc)
   end)

   it('model and optimizer state resume a run bit for bit', function()
      local function make()
         kbl.manual_seed(7)
         local m = blocks.Sequential{blocks.Dense{8, activation = 'relu'}, blocks.BatchNorm{}, blocks.Dense{3}}
         return m, optim.SGD{lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 1e-3}
      end
      local x, y = rings(120, 8)
      local a, oa = make()
      train(a, oa, x, y, 4, 40)
      local sd, osd = {}, oa:state_dict()
      for k, t in pairs(a:state_dict()) do sd[k] = t:clone() end
      train(a, oa, x, y, 4, 40)
      local b, ob = make()
      b(x:narrow(1, 1, 2))
      b:load_state_dict(sd)
      ob:load_state_dict(osd)
      train(b, ob, x, y, 4, 40)
      local sa, sb = snapshot(a), snapshot(b)
      for name, v in pairs(sa) do assert.are.same(v, sb[name], name) end
      assert.are.same(H.flat(a:get('2')._p.running_mean), H.flat(b:get('2')._p.running_mean))
   end)
end)
