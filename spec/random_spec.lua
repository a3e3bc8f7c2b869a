-- random: the counter-based generator (Philox 4x32-10) against the published
-- Random123 known answers, seeding and state, independence from the thread
-- count, and the distributions: rand, randn, uniform, normal, randint, randperm.
local ffi = require 'ffi'
local kbl = require 'kbl'
local C = require('kbl.lib').C

local function err_of(fn, ...)
   local ok, err = pcall(fn, ...)
   assert(not ok, 'expected an error')
   return tostring(err)
end

-- Bitwise equality of two tensors' bytes (same dtype and shape).
local function same_bits(a, b)
   assert.are.same(a:size(), b:size())
   assert.are.equal(a.dtype, b.dtype)
   a, b = a:contiguous(), b:contiguous()
   local n = a:numel() * ({float32 = 4, float64 = 8, int32 = 4, int64 = 8, uint8 = 1})[a.dtype]
   return ffi.string(ffi.cast('const char *', a:data_ptr()), n)
      == ffi.string(ffi.cast('const char *', b:data_ptr()), n)
end

local function philox(seed, stream, counter)
   local out = ffi.new('uint32_t[4]')
   C.kbl_philox(seed, stream, counter, out)
   return string.format('%08x %08x %08x %08x', out[0], out[1], out[2], out[3])
end

describe('Philox 4x32-10', function()
   -- kbl_philox(seed, stream, counter): key = (low, high) words of seed,
   -- counter words c0, c1 = low, high of counter and c2, c3 = low, high of stream.
   it('matches the Random123 known-answer vectors (kat_vectors)', function()
      assert.are.equal('6627e8d5 e169c58d bc57ac4c 9b00dbd8', philox(0ULL, 0ULL, 0ULL))
      assert.are.equal('408f276d 41c83b0e a20bc7c6 6d5451fd',
         philox(0xffffffffffffffffULL, 0xffffffffffffffffULL, 0xffffffffffffffffULL))
      -- the third vector: counter 243f6a88 85a308d3 13198a2e 03707344, key a4093822 299f31d0
      assert.are.equal('d16cfe09 94fdcceb 5001e420 24126ea1',
         philox(0x299f31d0a4093822ULL, 0x0370734413198a2eULL, 0x85a308d3243f6a88ULL))
   end)

   it('maps seed to the key, counter to c0/c1 and stream to c2/c3', function()
      -- each argument changes the output, and none stands in for another
      local base = philox(1ULL, 2ULL, 3ULL)
      assert.are_not.equal(base, philox(2ULL, 2ULL, 3ULL))
      assert.are_not.equal(base, philox(1ULL, 3ULL, 3ULL))
      assert.are_not.equal(base, philox(1ULL, 2ULL, 4ULL))
      assert.are_not.equal(philox(0ULL, 1ULL, 0ULL), philox(0ULL, 0ULL, 1ULL))
      assert.are_not.equal(philox(0ULL, 0ULL, 2ULL ^ 32), philox(0ULL, 1ULL, 0ULL))
      -- the high key word matters: seeds that differ only above bit 32
      assert.are_not.equal(philox(2ULL ^ 32, 0ULL, 0ULL), philox(0ULL, 0ULL, 0ULL))
   end)
end)

describe('generator state', function()
   it('gives the same tensors after the same seed and different ones otherwise', function()
      kbl.manual_seed(42)
      local a1, b1, c1 = kbl.rand(5, 7), kbl.randn(100), kbl.randint(0, 1000, {50})
      kbl.manual_seed(42)
      local a2, b2, c2 = kbl.rand(5, 7), kbl.randn(100), kbl.randint(0, 1000, {50})
      assert.is_true(same_bits(a1, a2))
      assert.is_true(same_bits(b1, b2))
      assert.is_true(same_bits(c1, c2))
      kbl.manual_seed(43)
      assert.is_false(same_bits(a1, kbl.rand(5, 7)))
      -- consecutive calls continue the stream rather than repeat it
      kbl.manual_seed(42)
      local x, y = kbl.rand(10), kbl.rand(10)
      assert.is_false(same_bits(x, y))
   end)

   it('get_rng_state and set_rng_state reproduce a stream mid-way', function()
      kbl.manual_seed(7)
      kbl.randn(33)
      local st = kbl.get_rng_state()
      assert.are.same({seed = 7, offset = 33}, st)
      local a = kbl.randn(4, 4)
      local b = kbl.randperm(20)
      kbl.randn(1000)
      kbl.set_rng_state(st)
      assert.is_true(same_bits(a, kbl.randn(4, 4)))
      assert.is_true(same_bits(b, kbl.randperm(20)))
   end)

   it('fills in place with uniform_ and normal_, also through strided views', function()
      kbl.manual_seed(5)
      local ref = kbl.randn(4, 3)
      kbl.manual_seed(5)
      local x = kbl.zeros(3, 4)
      x:t():normal_()                       -- element i of the view gets value i
      assert.is_true(same_bits(ref, x:t():contiguous()))
      local u = kbl.zeros(1000, {dtype = 'float64'}):uniform_(-2, -1)
      assert.is_true(u:min():item() >= -2 and u:max():item() < -1)
   end)
end)

describe('random tensors do not depend on the thread count', function()
   after_each(function() kbl.set_num_threads(2) end)

   it('rand, randn and randint are identical with 1 and 2 threads', function()
      local function draw(nt)
         kbl.set_num_threads(nt)
         assert.are.equal(nt, kbl.get_num_threads())
         kbl.manual_seed(11)
         -- big enough for the parallel path (over 65536 elements)
         return {kbl.rand(300, 400), kbl.randn(300, 400), kbl.randn({70000}, {dtype = 'float64'}),
            kbl.randint(-5, 5, {300, 300}), kbl.uniform({100000}, 3, 4)}
      end
      local one, two = draw(1), draw(2)
      for i = 1, #one do assert.is_true(same_bits(one[i], two[i]), 'tensor ' .. i) end
   end)
end)

describe('distributions', function()
   it('rand lies in [0, 1) and is uniform', function()
      kbl.manual_seed(1)
      local x = kbl.rand(100000, {dtype = 'float64'})
      assert.is_true(x:min():item() >= 0)
      assert.is_true(x:max():item() < 1)
      assert.is_true(math.abs(x:mean():item() - 0.5) < 0.005)
      -- each tenth of the interval holds about a tenth of the values
      local counts = {}
      for _, v in ipairs(x:tolist()) do
         local b = math.floor(v * 10) + 1
         counts[b] = (counts[b] or 0) + 1
      end
      for b = 1, 10 do assert.is_true(math.abs(counts[b] - 10000) < 500, 'bin ' .. b) end
      assert.are.equal('float32', kbl.rand(3).dtype)
   end)

   it('keeps the upper bound open in float32 too', function()
      -- float32 has 8 values in [1, 1 + 2^-20): rounding would reach the bound
      -- for about one sample in sixteen without care
      kbl.manual_seed(3)
      local x = kbl.uniform({20000}, 1, 1 + 2 ^ -20)
      assert.is_true(x:max():item() < 1 + 2 ^ -20)
      assert.is_true(x:min():item() >= 1)
   end)

   it('randn has mean about 0 and std about 1 over 100k samples', function()
      kbl.manual_seed(2)
      local x = kbl.randn(100000, {dtype = 'float64'})
      assert.is_true(math.abs(x:mean():item()) < 0.015)
      assert.is_true(math.abs(x:std():item() - 1) < 0.015)
      -- tails: about 4.55% beyond two standard deviations
      local beyond = (x:abs() - 2):relu():sign():sum():item() / 100000
      assert.is_true(math.abs(beyond - 0.0455) < 0.004)
      local y = kbl.randn(100000)
      assert.are.equal('float32', y.dtype)
      assert.is_true(math.abs(y:std():item() - 1) < 0.015)
   end)

   it('uniform and normal honour their parameters', function()
      kbl.manual_seed(4)
      local u = kbl.uniform({50000}, -3, 5, {dtype = 'float64'})
      assert.is_true(u:min():item() >= -3 and u:max():item() < 5)
      assert.is_true(math.abs(u:mean():item() - 1) < 0.05)
      assert.is_true(u:min():item() < -2.99 and u:max():item() > 4.99)
      local n = kbl.normal({50000}, 10, 0.5, {dtype = 'float64'})
      assert.is_true(math.abs(n:mean():item() - 10) < 0.02)
      assert.is_true(math.abs(n:std():item() - 0.5) < 0.02)
      assert.are.same({0, 0}, kbl.normal({2}, 0, 0):tolist())
      assert.matches('std must be non%-negative', err_of(kbl.normal, {2}, 0, -1))
   end)

   it('randint draws integers in [low, high), int64 by default', function()
      kbl.manual_seed(9)
      local r = kbl.randint(-3, 4, {20000})
      assert.are.equal('int64', r.dtype)
      assert.are.equal(-3, r:min():item())
      assert.are.equal(3, r:max():item())
      local counts = {}
      for _, v in ipairs(r:tolist()) do
         assert.are.equal(v, math.floor(v))
         counts[v] = (counts[v] or 0) + 1
      end
      for v = -3, 3 do assert.is_true(math.abs(counts[v] - 20000 / 7) < 250, 'value ' .. v) end
      local b = kbl.randint(0, 256, {1000}, {dtype = 'uint8'})
      assert.are.equal('uint8', b.dtype)
      assert.are.equal('int32', kbl.randint(0, 2, {3}, {dtype = 'int32'}).dtype)
      assert.are.same({5, 5, 5}, kbl.randint(5, 6, {3}):tolist())
      assert.matches('randint: empty range %[3, 3%)', err_of(kbl.randint, 3, 3, {2}))
   end)

   it('randperm is a permutation of the positions 1..n', function()
      kbl.manual_seed(6)
      for _, n in ipairs{1, 2, 10, 1000} do
         local p = kbl.randperm(n)
         assert.are.equal('int64', p.dtype)
         assert.are.same({n}, p:size())
         local seen = {}
         for _, v in ipairs(p:tolist()) do
            assert.is_true(v >= 1 and v <= n and not seen[v])
            seen[v] = true
         end
      end
      -- shuffled, not the identity
      local p = kbl.randperm(100):tolist()
      local fixed = 0
      for i = 1, 100 do if p[i] == i then fixed = fixed + 1 end end
      assert.is_true(fixed < 10)
      assert.are.equal(0, kbl.randperm(0):numel())
      assert.are.equal('int32', kbl.randperm(5, {dtype = 'int32'}).dtype)
   end)
end)
