-- tensor: creation, dtypes and conversions, metadata, 1-based element access,
-- item/tolist, in-place fills and copies, clone/contiguous, requires_grad rules
-- and Torch7-style printing.
local kbl = require 'kbl'
local H = require 'helper'

local DTYPES = {'float32', 'float64', 'int32', 'int64', 'uint8'}

-- pcall that returns the error message (asserting that it failed)
local function err_of(fn, ...)
   local ok, err = pcall(fn, ...)
   assert(not ok, 'expected an error')
   return tostring(err)
end

describe('tensor creation', function()
   it('builds from nested tables, inferring the shape', function()
      local x = kbl.tensor{{1, 2, 3}, {4, 5, 6}}
      assert.are.same({2, 3}, x:size())
      assert.are.equal('float32', x.dtype)
      assert.are.same({{1, 2, 3}, {4, 5, 6}}, x:tolist())
      local y = kbl.tensor{{{1}, {2}}, {{3}, {4}}}
      assert.are.same({2, 2, 1}, y:size())
      assert.are.same({{{1}, {2}}, {{3}, {4}}}, y:tolist())
      local s = kbl.tensor(2.5)
      assert.are.equal(0, s:dim())
      assert.are.equal(2.5, s:item())
      assert.are.same({1, 0}, kbl.tensor{true, false}:tolist())
   end)

   it('refuses ragged and non-numeric tables, naming the position', function()
      assert.matches('ragged nested table at data%[2%]', err_of(kbl.tensor, {{1, 2}, {3}}))
      assert.matches('ragged', err_of(kbl.tensor, {{1, 2}, 3}))
      assert.matches('data%[2%]%[2%] is a table where a number was expected %(ragged',
         err_of(kbl.tensor, {{1, 2}, {3, {4}}}))
      assert.matches('tensor_spec.lua', err_of(function() local t = kbl.tensor{{1, 2}, {3}}; return t end))   -- points at the caller
      assert.matches('data%[1%]%[2%] is not a number', err_of(kbl.tensor, {{1, 'x'}}))
      assert.matches('expected a number or a nested table', err_of(kbl.tensor, 'abc'))
   end)

   it('makes zeros, ones, full and empty of every dtype', function()
      for _, dt in ipairs(DTYPES) do
         local z = kbl.zeros(2, 3, {dtype = dt})
         assert.are.equal(dt, z.dtype)
         assert.are.same({{0, 0, 0}, {0, 0, 0}}, z:tolist())
         assert.are.same({{1, 1}, {1, 1}}, kbl.ones({2, 2}, {dtype = dt}):tolist())
         assert.are.same({7, 7, 7}, kbl.full({3}, 7, {dtype = dt}):tolist())
         local e = kbl.empty({4, 5}, {dtype = dt})
         assert.are.same({4, 5}, e:size())
         assert.are.equal(dt, e.dtype)
      end
      assert.are.same({3, 4}, kbl.zeros{3, 4}:size())
      assert.are.same({0, 2}, kbl.zeros(0, 2):size())
      assert.matches('negative size', err_of(kbl.zeros, {2, -1}))
      assert.matches("unknown dtype 'float16'", err_of(kbl.zeros, {2}, {dtype = 'float16'}))
   end)

   it('makes ranges: arange with integer and float steps, linspace', function()
      local a = kbl.arange(5)
      assert.are.equal('int64', a.dtype)
      assert.are.same({0, 1, 2, 3, 4}, a:tolist())
      assert.are.same({2, 4, 6, 8}, kbl.arange(2, 10, 2):tolist())
      assert.are.same({5, 3, 1}, kbl.arange(5, 0, -2):tolist())
      local f = kbl.arange(0, 1, 0.25)
      assert.are.equal('float32', f.dtype)
      assert.are.same({0, 0.25, 0.5, 0.75}, f:tolist())
      assert.are.equal(10, kbl.arange(0, 1, 0.1):numel())   -- end is excluded
      H.assert_close(kbl.arange(0, 1, 0.1), {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}, 1e-6)
      assert.are.equal('float64', kbl.arange(0, 3, {dtype = 'float64'}).dtype)
      assert.matches('arange: step', err_of(kbl.arange, 0, 5, -1))
      assert.matches('arange: step', err_of(kbl.arange, 0, 5, 0))
      local l = kbl.linspace(-1, 1, 5, {dtype = 'float64'})
      assert.are.same({-1, -0.5, 0, 0.5, 1}, l:tolist())
      assert.are.same({3}, kbl.linspace(3, 7, 1):tolist())
      assert.are.equal(0, kbl.linspace(0, 1, 0):numel())
      assert.matches('linspace: steps must be non%-negative', err_of(kbl.linspace, 0, 1, -2))
   end)

   it('makes identity matrices, square and rectangular', function()
      assert.are.same({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, kbl.eye(3):tolist())
      assert.are.same({{1, 0, 0}, {0, 1, 0}}, kbl.eye(2, 3):tolist())
      assert.are.same({{1, 0}, {0, 1}, {0, 0}}, kbl.eye(3, 2, {dtype = 'int64'}):tolist())
      assert.are.equal('int64', kbl.eye(3, {dtype = 'int64'}).dtype)
   end)

   it('makes *_like tensors with the shape and dtype of another', function()
      local x = kbl.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = 'float64'})
      local z = kbl.zeros_like(x)
      assert.are.same({2, 3}, z:size())
      assert.are.equal('float64', z.dtype)
      assert.are.same({{0, 0, 0}, {0, 0, 0}}, z:tolist())
      assert.are.same({{1, 1, 1}, {1, 1, 1}}, x:ones_like():tolist())
      assert.are.same({{9, 9, 9}, {9, 9, 9}}, kbl.full_like(x, 9):tolist())
      assert.are.equal('int32', kbl.zeros_like(x, {dtype = 'int32'}).dtype)
      assert.are.same({2, 3}, kbl.empty_like(x):size())
      local r = kbl.rand_like(x)
      assert.are.equal('float64', r.dtype)
      assert.are.same({2, 3}, kbl.randn_like(x):size())
      assert.is_true(kbl.zeros_like(x, {requires_grad = true}).requires_grad)
   end)
end)

describe('tensor dtypes', function()
   it('holds every dtype exactly within its range', function()
      local big = 2 ^ 40 + 3
      assert.are.same({big, -big}, kbl.tensor({big, -big}, {dtype = 'int64'}):tolist())
      assert.are.same({2147483647, -2147483648}, kbl.tensor({2147483647, -2147483648}, {dtype = 'int32'}):tolist())
      assert.are.same({0, 255}, kbl.tensor({0, 255}, {dtype = 'uint8'}):tolist())
      assert.are.same({0.1}, kbl.tensor({0.1}, {dtype = 'float64'}):tolist())
      assert.are_not.equal(0.1, kbl.tensor({0.1}):tolist()[1])   -- float32 rounds
      for _, dt in ipairs(DTYPES) do
         assert.are.equal(dt, kbl.tensor({1, 2}, {dtype = dt}):type())
      end
      -- Torch names are aliases
      assert.are.equal('float64', kbl.zeros({1}, {dtype = 'double'}).dtype)
      assert.are.equal('int64', kbl.zeros({1}, {dtype = 'long'}).dtype)
      assert.are.equal('uint8', kbl.zeros({1}, {dtype = 'byte'}).dtype)
   end)

   it('converts between every pair of dtypes', function()
      local vals = {0, 1, 2, 100}
      for _, from in ipairs(DTYPES) do
         for _, to in ipairs(DTYPES) do
            local y = kbl.tensor(vals, {dtype = from}):to(to)
            assert.are.equal(to, y.dtype)
            assert.are.same(vals, y:tolist(), from .. ' -> ' .. to)
         end
      end
      local x = kbl.tensor{1.5, 2.5}
      assert.are.equal('float64', x:double().dtype)
      assert.are.equal('int64', x:long().dtype)
      assert.are.equal('int32', x:int().dtype)
      assert.are.equal('uint8', x:byte().dtype)
      assert.are.equal('float32', x:double():float().dtype)
      assert.are.equal('int32', x:to(kbl.zeros({1}, {dtype = 'int32'})).dtype)
      assert.are.equal(x, x:to('float32'))   -- same dtype: the tensor itself
   end)

   it('truncates floats toward zero when converting to integers', function()
      local x = kbl.tensor({-2.7, -1.5, -0.5, 0.5, 1.5, 2.7}, {dtype = 'float64'})
      assert.are.same({-2, -1, 0, 0, 1, 2}, x:to('int32'):tolist())
      assert.are.same({-2, -1, 0, 0, 1, 2}, x:to('int64'):tolist())
      -- the contiguous (vectorized) path agrees with the strided one
      local long = kbl.full({1000}, -3.9)
      assert.are.equal(-3, long:to('int32'):tolist()[777])
      assert.are.equal(-3, long:view(10, 100):t():to('int64'):tolist()[50][7])
   end)

   it('wraps uint8 modulo 256, as C and PyTorch do', function()
      -- from floats (truncated, then wrapped), from integers, and on creation
      local f = kbl.tensor({-1.7, 2.9, 300, -1, 256, 511.5}, {dtype = 'float64'})
      assert.are.same({255, 2, 44, 255, 0, 255}, f:to('uint8'):tolist())
      assert.are.same({255, 2, 44, 255, 0, 255}, kbl.tensor({-1.7, 2.9, 300, -1, 256, 511.5}):byte():tolist())
      assert.are.same({253, 44, 0}, kbl.tensor({-3, 300, 256}, {dtype = 'int32'}):to('uint8'):tolist())
      assert.are.same({253, 44}, kbl.tensor({-3, 300}, {dtype = 'int64'}):to('uint8'):tolist())
      assert.are.same({255, 2}, kbl.tensor({-1, 258}, {dtype = 'uint8'}):tolist())
      assert.are.same({255, 255}, kbl.full({2}, -1, {dtype = 'uint8'}):tolist())
      -- long enough for the vectorized loops
      local v = kbl.full({4096}, -1.0):to('uint8'):tolist()
      assert.are.equal(255, v[1]); assert.are.equal(255, v[4096])
      local w = kbl.full({4096}, 300.0, {dtype = 'float64'}):to('uint8'):tolist()
      assert.are.equal(44, w[1]); assert.are.equal(44, w[4096])
      -- and back: uint8 reads as 0..255
      assert.are.same({200, 0}, kbl.tensor({200, 0}, {dtype = 'uint8'}):to('int32'):tolist())
      assert.are.same({200}, kbl.tensor({200}, {dtype = 'uint8'}):float():tolist())
   end)
end)

describe('tensor metadata', function()
   it('reports size, dim, numel and stride, counting dims from 1', function()
      local x = kbl.zeros(2, 3, 4)
      assert.are.same({2, 3, 4}, x:size())
      assert.are.same({2, 3, 4}, x.shape)
      assert.are.equal(3, x:size(2))
      assert.are.equal(4, x:size(-1))
      assert.are.equal(2, x:size(-3))
      assert.are.equal(3, x:dim())
      assert.are.equal(3, x.ndim)
      assert.are.equal(24, x:numel())
      assert.are.equal(2, #x)
      assert.are.same({12, 4, 1}, x:stride())
      assert.are.equal(4, x:stride(2))
      assert.are.equal(1, x:stride(-1))
      assert.is_true(x:is_contiguous())
      assert.are.equal('cpu', x.device)
      assert.matches('out of range', err_of(x.size, x, 4))
      assert.matches('non%-zero integer', err_of(x.size, x, 0))
      local s = kbl.tensor(1)
      assert.are.same({}, s:size())
      assert.are.equal(1, s:numel())
      assert.are.equal(0, kbl.zeros(3, 0):numel())
   end)

   it('prints a size as Lua writes it, and it stays a plain list', function()
      assert.are.equal('{2, 3, 4}', tostring(kbl.zeros(2, 3, 4):size()))
      assert.are.equal('{0, 2}', tostring(kbl.zeros(0, 2).shape))
      assert.are.equal('{}', tostring(kbl.tensor(1):size()))
      assert.are.equal('{0, 1099511627776}', tostring(kbl.zeros(0, 2 ^ 40):size()))
      local s = kbl.zeros(2, 3):size()
      s[#s + 1] = 5
      assert.are.same({2, 3, 5}, s)
      assert.are.equal('{2, 3, 5}', tostring(s))
      assert.are.same({2, 3, 5}, kbl.zeros(s):size())
   end)
end)

describe('tensor element access', function()
   it('reads numbers from a 1-D tensor and row views from more dims', function()
      local v = kbl.tensor{10, 20, 30}
      assert.are.equal(10, v[1])
      assert.are.equal(30, v[3])
      assert.are.equal('number', type(v[2]))
      assert.are.equal(2 ^ 40, kbl.tensor({2 ^ 40}, {dtype = 'int64'})[1])
      assert.are.equal('number', type(kbl.tensor({5}, {dtype = 'int64'})[1]))
      local x = kbl.tensor{{1, 2, 3}, {4, 5, 6}}
      local row = x[2]
      assert.is_true(kbl.is_tensor(row))
      assert.are.same({3}, row:size())
      assert.are.same({4, 5, 6}, row:tolist())
      assert.is_true(row:same_storage(x))
      assert.are.equal(6, x[2][3])
      local c = kbl.arange(24):view(2, 3, 4)
      assert.are.equal(23, c[2][3][4])
      assert.are.same({3, 4}, c[1]:size())
   end)

   it('counts negative positions from the end', function()
      local x = kbl.tensor{{1, 2, 3}, {4, 5, 6}}
      assert.are.equal(3, x[1][-1])
      assert.are.equal(4, x[-1][1])
      assert.are.same({4, 5, 6}, x[-1]:tolist())
      assert.are.equal(1, x[-2][-3])
   end)

   it('raises a clear error for positions out of range', function()
      local x = kbl.tensor{{1, 2, 3}, {4, 5, 6}}
      assert.matches('index 3 is out of range for size 2', err_of(function() return x[3] end))
      assert.matches('index %-3 is out of range for size 2', err_of(function() return x[-3] end))
      assert.matches('index 4 is out of range for size 3', err_of(function() return x[1][4] end))
      assert.matches('positions count from 1', err_of(function() return x[0] end))
      assert.matches('positions count from 1', err_of(function() return x[1.5] end))
      assert.matches('0%-dim', err_of(function() return kbl.tensor(3)[1] end))
      assert.matches('out of range', err_of(function() x[3] = 1 end))
      assert.matches('out of range', err_of(function() x[1][0 - 4] = 1 end))
   end)

   it('writes with t[i] = v: elements, rows from numbers or tensors', function()
      local v = kbl.zeros(3, {dtype = 'int64'})
      v[1] = 5; v[-1] = 7
      assert.are.same({5, 0, 7}, v:tolist())
      local x = kbl.zeros(2, 3)
      x[1] = 2                              -- fills the row
      x[2] = kbl.tensor{7, 8, 9}            -- copies into the row
      x[2][2] = 3.5
      assert.are.same({{2, 2, 2}, {7, 3.5, 9}}, x:tolist())
      x[-1] = kbl.tensor{1}                 -- broadcasts
      assert.are.same({{2, 2, 2}, {1, 1, 1}}, x:tolist())
      assert.matches('needs a number', err_of(function() v[1] = 'a' end))
      assert.matches("cannot set field 'foo'", err_of(function() x.foo = 1 end))
      -- writes through a non-contiguous view land in the right place
      local m = kbl.zeros(2, 3)
      local mt = m:t()
      mt[3][1] = 4
      assert.are.same({{0, 0, 4}, {0, 0, 0}}, m:tolist())
   end)

   it('reads one value with item and nested tables with tolist', function()
      assert.are.equal(4, kbl.tensor{{4}}:item())
      assert.are.equal(-3, kbl.tensor({-3}, {dtype = 'int32'}):item())
      assert.matches('item: tensor %[2, 3%] float32 has 6 elements, not one', err_of(function()
         return kbl.zeros(2, 3):item()
      end))
      local x = kbl.arange(6):view(2, 3)
      assert.are.same({{0, 1, 2}, {3, 4, 5}}, x:tolist())
      assert.are.same({{0, 3}, {1, 4}, {2, 5}}, x:t():tolist())   -- follows strides
      assert.are.same({}, kbl.zeros(0):tolist())
      assert.are.equal(7, kbl.tensor(7):tolist())
   end)
end)

describe('tensor in-place fills and copies', function()
   it('fill_ and zero_ set every element, also through strided views', function()
      local x = kbl.ones(3, 4, {dtype = 'int32'})
      assert.are.equal(x, x:fill_(5))
      assert.are.same({5, 5, 5, 5}, x[3]:tolist())
      x:zero_()
      assert.are.same({{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}}, x:tolist())
      x:select(2, 2):fill_(9)      -- a column: strided
      assert.are.same({{0, 9, 0, 0}, {0, 9, 0, 0}, {0, 9, 0, 0}}, x:tolist())
      local big = kbl.zeros(300, 300)
      big:t():fill_(2)
      assert.are.equal(2 * 90000, big:sum():item())
   end)

   it('copy_ broadcasts the source and converts its dtype', function()
      local z = kbl.zeros(2, 3)
      z:copy_(kbl.tensor{1, 2, 3})
      assert.are.same({{1, 2, 3}, {1, 2, 3}}, z:tolist())
      z:copy_(kbl.tensor({{7}, {8}}, {dtype = 'int64'}))
      assert.are.same({{7, 7, 7}, {8, 8, 8}}, z:tolist())
      local i = kbl.zeros(3, {dtype = 'int32'})
      i:copy_(kbl.tensor({1.9, -1.9, 3}, {dtype = 'float64'}))
      assert.are.same({1, -1, 3}, i:tolist())
      z:copy_(4)
      assert.are.same({4, 4, 4}, z[1]:tolist())
      -- into a transposed view
      local m = kbl.zeros(3, 2)
      m:t():copy_(kbl.tensor{{1, 2, 3}, {4, 5, 6}})
      assert.are.same({{1, 4}, {2, 5}, {3, 6}}, m:tolist())
      assert.matches('do not broadcast', err_of(function() z:copy_(kbl.tensor{1, 2}) end))
      assert.matches('source %[2, 3%] float32 does not broadcast to destination %[3%] float32',
         err_of(function() kbl.tensor{1, 2, 3}:copy_(kbl.zeros(2, 3)) end))
   end)

   it('clone copies the data; contiguous copies only when needed', function()
      local x = kbl.tensor{{1, 2}, {3, 4}}
      local c = x:clone()
      assert.is_false(c:same_storage(x))
      c[1][1] = 100
      assert.are.equal(1, x[1][1])
      assert.are.same({{100, 2}, {3, 4}}, c:tolist())
      assert.is_true(x:contiguous():same_storage(x))
      local t = x:t()
      assert.is_false(t:is_contiguous())
      local tc = t:contiguous()
      assert.is_true(tc:is_contiguous())
      assert.is_false(tc:same_storage(x))
      assert.are.same({{1, 3}, {2, 4}}, tc:tolist())
      assert.are.same({2, 1}, tc:stride())
      local k = kbl.tensor(x)             -- tensor(tensor) copies too
      assert.is_false(k:same_storage(x))
   end)

   it('passes gradients through clone, contiguous and dtype conversion', function()
      local x = H.leaf({3, 4})
      H.gradcheck(function(a) return a:clone() * a end, {x})
      H.gradcheck(function(a) return a:t():contiguous():exp() end, {x})
      -- float32 is too coarse for finite differences: check the conversion's gradient directly
      local f = kbl.tensor({1, 2}, {requires_grad = true})
      local d = f:double()
      assert.are.equal('float64', d.dtype)
      d:mul(kbl.tensor({3, 4}, {dtype = 'float64'})):sum():backward()
      assert.are.equal('float32', f.grad.dtype)
      assert.are.same({3, 4}, f.grad:tolist())
   end)
end)

describe('tensor requires_grad', function()
   it('lets float tensors require grad and refuses integer ones', function()
      local x = kbl.zeros(2)
      assert.is_false(x.requires_grad)
      x.requires_grad = true
      assert.is_true(x.requires_grad)
      assert.is_true(x.is_leaf)
      x.requires_grad = false
      assert.is_false(x.requires_grad)
      assert.is_true(kbl.ones({2}, {dtype = 'float64', requires_grad = true}).requires_grad)
      assert.are.equal(x, x:requires_grad_())
      assert.is_true(x.requires_grad)
      for _, dt in ipairs{'int32', 'int64', 'uint8'} do
         local i = kbl.zeros(2, {dtype = dt})
         assert.matches('only float tensors can require gradients, got %[2%] ' .. dt,
            err_of(function() i.requires_grad = true end))
         assert.matches('only float tensors', err_of(kbl.zeros, {2}, {dtype = dt, requires_grad = true}))
      end
   end)

   it('cannot turn requires_grad off on a non-leaf, and integer results carry no grad', function()
      local x = kbl.ones({2}, {requires_grad = true})
      local y = x * 2
      assert.is_false(y.is_leaf)
      assert.matches('non%-leaf', err_of(function() y.requires_grad = false end))
      assert.is_false(x:long().requires_grad)
      assert.is_true(x:double().requires_grad)
   end)
end)

describe('tensor printing', function()
   it('prints values, then the dtype and size line', function()
      local s = tostring(kbl.tensor{{1, 2, 3}, {4, 5, 6}})
      assert.are.equal(' 1 2 3\n 4 5 6\n[kbl.float32 of size 2x3]', s)
      local f = tostring(kbl.tensor({{1.5, -2}, {0.25, 3}}, {dtype = 'float64'}))
      assert.are.equal('  1.5000 -2.0000\n  0.2500  3.0000\n[kbl.float64 of size 2x2]', f)
      assert.are.equal('  1\n 10\n[kbl.int64 of size 2]', tostring(kbl.tensor({1, 10}, {dtype = 'int64'})))
      assert.are.equal('7\n[kbl.int32 of size scalar]', tostring(kbl.tensor(7, {dtype = 'int32'})))
      assert.are.equal('[empty]\n[kbl.float32 of size 0x3]', tostring(kbl.zeros(0, 3)))
      assert.matches('1%.0000e%-05', tostring(kbl.tensor{1e-5, 1}))
      assert.matches('%[kbl.float32 of size 2, requires_grad%]$', tostring(kbl.ones({2}, {requires_grad = true})))
      assert.matches('%[kbl.float32 of size 2, grad_fn=', tostring(kbl.ones({2}, {requires_grad = true}) * 2))
   end)

   it('prints a 3-D tensor as (i,.,.) = slices', function()
      local s = tostring(kbl.arange(8):view(2, 2, 2))
      assert.are.equal('(1,.,.) =\n 0 1\n 2 3\n\n(2,.,.) =\n 4 5\n 6 7\n\n[kbl.int64 of size 2x2x2]', s)
      local s4 = tostring(kbl.zeros(2, 1, 2, 2))
      assert.matches('%(1,1,.,.%) =', s4)
      assert.matches('%(2,1,.,.%) =', s4)
   end)

   it('summarizes big tensors with the first and last items', function()
      local s = tostring(kbl.arange(2000))
      assert.are.equal('    0\n    1\n    2\n ...\n 1997\n 1998\n 1999\n[kbl.int64 of size 2000]', s)
      local m = tostring(kbl.arange(10000):view(100, 100))
      local lines = {}
      for l in m:gmatch('[^\n]+') do lines[#lines + 1] = l end
      assert.are.equal(8, #lines)               -- 3 rows, ..., 3 rows, footer
      assert.matches('^ +0 +1 +2 +%.%.%. +97 +98 +99$', lines[1])
      assert.are.equal(' ...', lines[4])
      assert.are.equal('[kbl.int64 of size 100x100]', lines[8])
      assert.matches('%(1,.,.%) =.*%.%.%..*%(50,.,.%) =', tostring(kbl.zeros(50, 5, 5)))
   end)

   it('prints a freed tensor as such', function()
      local x = kbl.zeros(2)
      x:free()
      assert.are.equal('[kbl tensor (freed)]', tostring(x))
   end)
end)
