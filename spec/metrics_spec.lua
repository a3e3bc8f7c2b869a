-- metrics: every metric against values worked out by hand, streaming over
-- several updates, state round trips and error messages.
local kbl = require 'kbl'
local metrics = require 'kbl.metrics'
local H = require 'helper'

-- Scores whose argmax is the given label (classes 1..C).
local function scores(labels, C)
   local rows = {}
   for i, l in ipairs(labels) do
      rows[i] = {}
      for c = 1, C do rows[i][c] = c == l and 2.0 or -(c / 10) end
   end
   return kbl.tensor(rows)
end
local function long(t) return kbl.tensor(t, {dtype = 'int64'}) end

-- predictions 1 2 3 1 | 2 3 1 1 against targets 1 2 2 1 | 3 3 2 1 (two batches):
-- confusion (rows true, columns predicted) {{3, 0, 0}, {1, 1, 1}, {0, 1, 1}}
local P1, T1 = {1, 2, 3, 1}, {1, 2, 2, 1}
local P2, T2 = {2, 3, 1, 1}, {3, 3, 2, 1}
local function feed(m)
   m:update(scores(P1, 3), long(T1))
   m:update(scores(P2, 3), long(T2))
   return m
end

describe('metrics', function()
   it('Accuracy over batches of scores, labels and one-hot targets', function()
      local m = feed(metrics.Accuracy{})
      assert.are.equal('accuracy', m.name)
      H.assert_close(m:result(), 5 / 8, 1e-15)
      m:reset()
      assert.are.equal(0, m:result())
      m:update(long{1, 2, 3}, kbl.one_hot(long{1, 2, 1}, 3):to('float32'))
      H.assert_close(m:result(), 2 / 3, 1e-15)
   end)

   it('Accuracy of binary probabilities thresholds at 0.5', function()
      local m = metrics.Accuracy{}
      m:update(kbl.tensor{{0.2}, {0.7}, {0.5}, {0.9}}, long{0, 1, 0, 0})
      H.assert_close(m:result(), 0.5, 1e-15)
   end)

   it('TopKAccuracy counts the target among the k best (ties count)', function()
      local pred = kbl.tensor{{0.1, 0.5, 0.3, 0.1}, {0.4, 0.3, 0.2, 0.1}, {0.25, 0.25, 0.25, 0.25}}
      local t = long{3, 4, 2}
      local expect = {[1] = 1 / 3, [2] = 2 / 3, [3] = 2 / 3, [4] = 1}
      for k, v in pairs(expect) do
         local m = metrics.TopKAccuracy{k = k}
         m:update(pred, t)
         H.assert_close(m:result(), v, 1e-15)
         assert.are.equal('top' .. k .. '_accuracy', m.name)
      end
   end)

   it('ConfusionMatrix rows are true classes, columns predicted', function()
      local m = feed(metrics.ConfusionMatrix{num_classes = 3})
      assert.are.same({{3, 0, 0}, {1, 1, 1}, {0, 1, 1}}, m:result())
      -- the number of classes comes from the scores' width when not given
      assert.are.same({{3, 0, 0}, {1, 1, 1}, {0, 1, 1}}, feed(metrics.ConfusionMatrix{}):result())
   end)

   it('Precision, Recall and F1: macro, micro, weighted and per class', function()
      local P = {0.75, 0.5, 0.5}
      local R = {1, 1 / 3, 0.5}
      local F = {2 * 0.75 / 1.75, 0.4, 0.5}
      local function mean(t) return (t[1] + t[2] + t[3]) / 3 end
      H.assert_close(feed(metrics.Precision{num_classes = 3}):result(), mean(P), 1e-12)
      H.assert_close(feed(metrics.Recall{num_classes = 3}):result(), mean(R), 1e-12)
      H.assert_close(feed(metrics.F1{num_classes = 3}):result(), mean(F), 1e-12)
      H.assert_close(kbl.tensor(feed(metrics.Precision{average = 'none'}):result(), {dtype = 'float64'}), P, 1e-12)
      H.assert_close(kbl.tensor(feed(metrics.Recall{average = 'none'}):result(), {dtype = 'float64'}), R, 1e-12)
      H.assert_close(kbl.tensor(feed(metrics.F1{average = 'none'}):result(), {dtype = 'float64'}), F, 1e-12)
      H.assert_close(feed(metrics.F1{average = 'micro'}):result(), 5 / 8, 1e-12)
      H.assert_close(feed(metrics.Precision{average = 'weighted'}):result(), (0.75 * 3 + 0.5 * 3 + 0.5 * 2) / 8, 1e-12)
      assert.are.equal('f1', metrics.F1{}.name)
      assert.are.equal('recall_none', metrics.Recall{average = 'none'}.name)
   end)

   it('a class never predicted nor present scores 0, not NaN', function()
      local m = metrics.Precision{num_classes = 3, average = 'none'}
      m:update(long{1, 1}, long{1, 2})
      assert.are.same({0.5, 0, 0}, m:result())
   end)

   it('Mean, MAE and MSE stream over updates', function()
      local m = metrics.Mean{}
      m:update(2)
      m:update(4, 3)
      H.assert_close(m:result(), 3.5, 1e-15)
      m:update(kbl.tensor{1, 2, 3})
      H.assert_close(m:result(), 20 / 7, 1e-15)
      local mae, mse = metrics.MAE{}, metrics.MSE{}
      for _, x in ipairs{mae, mse} do
         x:update(kbl.tensor{1, 2}, kbl.tensor{2, 2})
         x:update(kbl.tensor{{3}}, long{5})
      end
      H.assert_close(mae:result(), 1, 1e-15)
      H.assert_close(mse:result(), 5 / 3, 1e-15)
   end)

   it('state and set_state carry a metric exactly', function()
      local m = metrics.F1{}
      m:update(scores(P1, 3), long(T1))
      local s = m:state()
      local again = metrics.F1{}
      again:set_state(s)
      m:update(scores(P2, 3), long(T2))
      again:update(scores(P2, 3), long(T2))
      assert.are.equal(m:result(), again:result())
      local acc = metrics.Accuracy{}
      acc:update(long{1}, long{1})
      assert.are.same({correct = 1, total = 1}, acc:state())
   end)

   it('does not record a graph through predictions', function()
      local w = kbl.ones({2, 3}, {requires_grad = true})
      local m = metrics.Accuracy{}
      m:update(w * 2, long{1, 2})
      assert.is_nil(w.grad)
   end)

   it('errors name the metric and the problem', function()
      assert.has_error(function() metrics.Accuracy{topk = 2} end,
         "metrics.Accuracy: unknown option 'topk' (options: name, threshold)")
      assert.has_error(function() metrics.F1{average = 'mean'} end)
      local ok, err = pcall(function() metrics.Accuracy{}:update(long{1, 2}, long{1, 2, 3}) end)
      assert.is_false(ok)
      assert.matches('metrics.Accuracy: 2 predictions but 3 targets', err, 1, true)
      ok, err = pcall(function() metrics.ConfusionMatrix{num_classes = 2}:update(long{1, 3}, long{1, 2}) end)
      assert.is_false(ok)
      assert.matches('label 3 is outside 1..2', err, 1, true)
      ok, err = pcall(function() metrics.ConfusionMatrix{}:update(long{1, 3}, long{1, 2}) end)
      assert.is_false(ok)
      assert.matches('needs num_classes', err, 1, true)
   end)
end)
