-- dropout: inverted dropout and dropout2d: the fraction dropped, the 1/(1-p)
-- scaling, identity in evaluation and at p = 0, masks reproduced by a seed and
-- independent of the thread count, the gradient through the mask (float64
-- gradient checks), and bad arguments.
local kbl = require 'kbl'
local H = require 'helper'

local function err_of(fn)
   local ok, err = pcall(fn)
   assert.is_false(ok, 'expected an error')
   return tostring(err)
end

describe('dropout', function()
   it('drops about p of the elements and scales the rest by 1/(1-p)', function()
      kbl.manual_seed(1)
      local x = kbl.full({200, 500}, 2)
      local y = kbl.dropout(x, 0.3)
      local zeros = kbl.eq(y, 0):sum():item()
      assert.is_true(math.abs(zeros / 1e5 - 0.3) < 0.01, 'dropped fraction ' .. zeros / 1e5)
      local kept = kbl.eq(y, 2 / 0.7):sum():item()
      assert.equals(1e5, zeros + kept)
      -- the mean is preserved in expectation
      assert.is_true(math.abs(y:mean():item() - 2) < 0.05)
   end)

   it('is the identity in evaluation and at p = 0, and zero at p = 1', function()
      local x = kbl.randn{4, 5}
      H.assert_close(kbl.dropout(x, 0.5, {training = false}), x, 0)
      H.assert_close(x:dropout(0), x, 0)
      local w = kbl.randn({3, 4}, {requires_grad = true})
      local y = kbl.dropout(w, 1)
      H.assert_close(y, kbl.zeros{3, 4}, 0)
      y:sum():backward()
      H.assert_close(w.grad, kbl.zeros{3, 4}, 0)
   end)

   it('reproduces masks from a seed, whatever the thread count, and draws new ones after', function()
      local x = kbl.ones{300, 300}
      local threads = kbl.get_num_threads()
      kbl.set_num_threads(1)
      kbl.manual_seed(42)
      local a = kbl.dropout(x, 0.5)
      local a2 = kbl.dropout(x, 0.5)
      kbl.set_num_threads(2)
      kbl.manual_seed(42)
      local b = kbl.dropout(x, 0.5)
      kbl.set_num_threads(threads)
      H.assert_close(a, b, 0)
      assert.is_true(kbl.ne(a, a2):sum():item() > 10000, 'the next call draws a new mask')
      local st = kbl.get_rng_state()
      local c = kbl.dropout(x, 0.5)
      kbl.set_rng_state(st)
      H.assert_close(kbl.dropout(x, 0.5), c, 0)
   end)

   it('passes the gradient through the kept elements (gradient check)', function()
      local x = kbl.randn({6, 7}, {requires_grad = true})
      local y = kbl.dropout(x, 0.4)
      y:sum():backward()
      H.assert_close(x.grad, kbl.ne(y, 0):float() / 0.6, 1e-6)
      H.gradcheck(function(x_)
         kbl.manual_seed(9)
         return kbl.dropout(x_, 0.4)
      end, {H.leaf({5, 6})})
   end)

   it('rejects p outside [0, 1]', function()
      assert.matches('p must be in %[0, 1%], got 1.5', err_of(function() kbl.dropout(kbl.ones{2}, 1.5) end))
      assert.matches('p must be a number', err_of(function() kbl.dropout(kbl.ones{2}) end))
   end)
end)

describe('dropout2d', function()
   it('drops whole channels', function()
      kbl.manual_seed(3)
      local y = kbl.dropout2d(kbl.ones{50, 40, 3, 3}, 0.25)
      local per_plane = y:sum({3, 4})               -- [50, 40]: 0 or 9 / 0.75
      local zero = kbl.eq(per_plane, 0):sum():item()
      local full = kbl.lt(kbl.abs(per_plane - 12), 1e-4):sum():item()
      assert.equals(2000, zero + full)
      assert.is_true(math.abs(zero / 2000 - 0.25) < 0.05, 'dropped fraction ' .. zero / 2000)
      H.assert_close(kbl.dropout2d(y, 0.25, {training = false}), y, 0)
   end)

   it('passes gradient checks and rejects a 1-D input', function()
      H.gradcheck(function(x_)
         kbl.manual_seed(11)
         return kbl.dropout2d(x_, 0.5)
      end, {H.leaf({3, 4, 2, 2})})
      assert.matches('must be %[N, C, ...%]', err_of(function() kbl.dropout2d(kbl.ones{4}, 0.5) end))
   end)
end)
