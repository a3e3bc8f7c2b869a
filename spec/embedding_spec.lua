-- embedding: lookup with 1-based int64 indices of any shape, the gradient
-- summed into the table (repeated indices add up, the padding row gets none),
-- a float64 gradient check, and bad indices named in the error.
local kbl = require 'kbl'
local H = require 'helper'

local function err_of(fn)
   local ok, err = pcall(fn)
   assert.is_false(ok, 'expected an error')
   return tostring(err)
end

local function table4x3(opts)
   return kbl.tensor({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}}, opts)
end

describe('embedding', function()
   it('looks up rows at 1-based indices of any shape', function()
      local idx = kbl.tensor({{1, 4}, {2, 2}}, {dtype = 'int64'})
      local y = kbl.embedding(idx, table4x3())
      assert.same({2, 2, 3}, y:size())
      H.assert_close(y, {{{1, 2, 3}, {10, 11, 12}}, {{4, 5, 6}, {4, 5, 6}}})
      H.assert_close(kbl.embedding(kbl.tensor({3}, {dtype = 'int64'}), table4x3()), {{7, 8, 9}})
   end)

   it('sums the gradient into the table; the padding row gets none', function()
      local w = table4x3({requires_grad = true})
      local idx = kbl.tensor({2, 3, 2, 1}, {dtype = 'int64'})
      local y = kbl.embedding(idx, w, {padding_idx = 3})
      H.assert_close(y:select(1, 2), {7, 8, 9}) -- the padding row is still looked up
      ;(y * kbl.tensor{{1, 1, 1}, {5, 5, 5}, {2, 2, 2}, {1, 0, 1}}):sum():backward()
      H.assert_close(w.grad, {{1, 0, 1}, {3, 3, 3}, {0, 0, 0}, {0, 0, 0}})
      -- a negative padding_idx counts from the end
      local w2 = table4x3({requires_grad = true})
      kbl.embedding(kbl.tensor({4, 1}, {dtype = 'int64'}), w2, {padding_idx = -1}):sum():backward()
      H.assert_close(w2.grad, {{1, 1, 1}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}})
   end)

   it('passes a gradient check for the table', function()
      local idx = kbl.tensor({{1, 3, 3}, {5, 2, 1}}, {dtype = 'int64'})
      H.gradcheck(function(w_) return kbl.embedding(idx, w_) end, {H.leaf({5, 4})})
      H.gradcheck(function(w_) return idx:embedding(w_):tanh() end, {H.leaf({5, 4})})
   end)

   it('names bad indices and arguments', function()
      local w = table4x3()
      assert.matches('index 5 at position 2 is out of range for a table of 4 rows', err_of(function()
         kbl.embedding(kbl.tensor({1, 5}, {dtype = 'int64'}), w) end))
      assert.matches('index 0 at position 1', err_of(function()
         kbl.embedding(kbl.tensor({0}, {dtype = 'int64'}), w) end))
      assert.matches('indices must be an int64 tensor', err_of(function() kbl.embedding(kbl.tensor{1}, w) end))
      assert.matches('padding_idx 5 is out of range for 4 rows', err_of(function()
         kbl.embedding(kbl.tensor({1}, {dtype = 'int64'}), w, {padding_idx = 5}) end))
      assert.matches('weight must be a float table', err_of(function()
         kbl.embedding(kbl.tensor({1}, {dtype = 'int64'}), kbl.ones{4}) end))
   end)
end)
