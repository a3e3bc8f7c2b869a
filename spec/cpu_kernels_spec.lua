-- cpu kernels: the CPU's GEMM and convolution paths (oneDNN for float32, plain
-- loops for float64, core/cpu/dnnl_*.c) on odd shapes, against a float64
-- reference written here in Lua: 1x1 kernels, stride 2, groups, depthwise,
-- dilation, batch 1, asymmetric padding, non-contiguous inputs, transposed and
-- broadcast matmul operands; float32 average pooling, softmax, sigmoid and tanh (oneDNN),
-- layer and group norm rows against float64. Float32 must be float32: the tolerance (2e-5 of
-- the largest value) fails a kernel that computes in bf16 (about 4e-3).
local kbl = require 'kbl'
local H = require 'helper'

local TOL32, TOL64 = 2e-5, 1e-12

-- max |a - b| over max |b|, both flat lists
local function rel_err(a, b)
   assert.are.equal(#b, #a, 'sizes differ')
   local err, scale = 0, 1e-30
   for i = 1, #a do
      err = math.max(err, math.abs(a[i] - b[i]))
      scale = math.max(scale, math.abs(b[i]))
   end
   return err / scale
end

local function check(got, want, tol, what)
   local e = rel_err(H.flat(got:double()), want)
   assert(e <= tol, string.format('%s: relative error %.3g exceeds %g', what, e, tol))
end

-- ---- reference convolution on flat row-major lists ------------------------------

local function conv_ref(c)
   local N, C, Hh, W, O, kh, kw = c.n, c.c, c.h, c.w, c.o, c.kh, c.kw
   local sh, sw, pt, pb, pl, pr = c.s[1], c.s[2], c.pad[1], c.pad[2], c.pad[3], c.pad[4]
   local dh, dw, g = c.d[1], c.d[2], c.g
   local cg, og = C / g, O / g
   local oh = math.floor((Hh + pt + pb - dh * (kh - 1) - 1) / sh) + 1
   local ow = math.floor((W + pl + pr - dw * (kw - 1) - 1) / sw) + 1
   -- visits every (output element, weight tap, input element) triple
   local function each(fn)
      for n = 0, N - 1 do
         for o = 0, O - 1 do
            local gr = math.floor(o / og)
            for oy = 0, oh - 1 do
               for ox = 0, ow - 1 do
                  local yi = ((n * O + o) * oh + oy) * ow + ox + 1
                  for ci = 0, cg - 1 do
                     for i = 0, kh - 1 do
                        local iy = oy * sh - pt + i * dh
                        if iy >= 0 and iy < Hh then
                           for j = 0, kw - 1 do
                              local ix = ox * sw - pl + j * dw
                              if ix >= 0 and ix < W then
                                 fn(yi, ((o * cg + ci) * kh + i) * kw + j + 1,
                                    ((n * C + gr * cg + ci) * Hh + iy) * W + ix + 1)
                              end
                           end
                        end
                     end
                  end
               end
            end
         end
      end
   end
   return oh, ow, each
end

local function zeros(n)
   local t = {}
   for i = 1, n do t[i] = 0 end
   return t
end

local CONV_CASES = {
   {name = '1x1 kernel', n = 2, c = 8, h = 5, w = 5, o = 16,
      kh = 1, kw = 1, s = {1, 1}, pad = {0, 0, 0, 0}, d = {1, 1}, g = 1},
   {name = 'stride 2', n = 2, c = 16, h = 9, w = 9, o = 32,
      kh = 3, kw = 3, s = {2, 2}, pad = {1, 1, 1, 1}, d = {1, 1}, g = 1},
   {name = 'blocked channels', n = 3, c = 32, h = 8, w = 8, o = 64,
      kh = 3, kw = 3, s = {1, 1}, pad = {1, 1, 1, 1}, d = {1, 1}, g = 1},
   {name = 'groups 3', n = 2, c = 6, h = 7, w = 7, o = 9,
      kh = 3, kw = 3, s = {1, 1}, pad = {1, 1, 1, 1}, d = {1, 1}, g = 3},
   {name = 'depthwise', n = 2, c = 16, h = 6, w = 6, o = 16,
      kh = 3, kw = 3, s = {1, 1}, pad = {1, 1, 1, 1}, d = {1, 1}, g = 16},
   {name = 'dilation 2', n = 1, c = 4, h = 10, w = 10, o = 5,
      kh = 3, kw = 3, s = {1, 1}, pad = {2, 2, 2, 2}, d = {2, 2}, g = 1},
   {name = 'batch 1, asymmetric padding, strides 2x1', n = 1, c = 3, h = 6, w = 7, o = 2, kh = 2, kw = 3, s = {2, 1},
      pad = {1, 0, 2, 1}, d = {1, 1}, g = 1},
   {name = "padding 'same' with an even kernel (asymmetric inside kbl)", n = 2, c = 3, h = 6, w = 5, o = 4, kh = 2,
      kw = 4, s = {1, 1}, pad = {0, 1, 1, 2}, d = {1, 1}, g = 1, same = true},
   {name = 'one input channel (a first layer)', n = 4, c = 1, h = 12, w = 12, o = 32, kh = 3, kw = 3, s = {1, 1},
      pad = {1, 1, 1, 1}, d = {1, 1}, g = 1},
   {name = 'non-contiguous input', n = 2, c = 5, h = 6, w = 5, o = 7, kh = 3, kw = 2, s = {1, 2}, pad = {0, 0, 1, 1},
      d = {1, 1}, g = 1, transposed = true},
}

describe('conv2d on the CPU kernels', function()
   for _, c in ipairs(CONV_CASES) do
      for _, dtype in ipairs{'float32', 'float64'} do
         it(c.name .. ' (' .. dtype .. '): values and the three gradients match the reference', function()
            kbl.manual_seed(5)
            local x
            if c.transposed then   -- the same values, seen through a transpose of the last two dims
               x = kbl.randn({c.n, c.c, c.w, c.h}, {dtype = dtype}):transpose(3, 4)
               assert.is_false(x:is_contiguous())
            else
               x = kbl.randn({c.n, c.c, c.h, c.w}, {dtype = dtype})
            end
            x:requires_grad_()
            local w = kbl.randn({c.o, c.c / c.g, c.kh, c.kw}, {dtype = dtype, requires_grad = true})
            local b = kbl.randn({c.o}, {dtype = dtype, requires_grad = true})
            -- padding as kbl.conv2d takes it: symmetric pairs, or through the C op for asymmetric
            local y
            if c.same then
               y = kbl.conv2d(x, w, b, {padding = 'same'})
            elseif c.pad[1] == c.pad[2] and c.pad[3] == c.pad[4] then
               y = kbl.conv2d(x, w, b, {stride = c.s, padding = {c.pad[1], c.pad[3]}, dilation = c.d, groups = c.g})
            else
               local px = kbl.pad(x, {c.pad[3], c.pad[4], c.pad[1], c.pad[2]})
               y = kbl.conv2d(px, w, b, {stride = c.s, dilation = c.d, groups = c.g})
            end
            local xs, ws, bs = H.flat(x:double()), H.flat(w:double()), H.flat(b:double())
            local oh, ow, each = conv_ref(c)
            assert.are.same({c.n, c.o, oh, ow}, y:size())
            local yr = zeros(c.n * c.o * oh * ow)
            local plane = oh * ow
            for i = 1, #yr do yr[i] = bs[math.floor((i - 1) / plane) % c.o + 1] end
            each(function(yi, wi, xi) yr[yi] = yr[yi] + ws[wi] * xs[xi] end)
            local tol = dtype == 'float32' and TOL32 or TOL64
            check(y, yr, tol, 'y')
            local gy = kbl.randn(y:size(), {dtype = dtype})
            local gys = H.flat(gy:double())
            local dx, dw, db = zeros(#xs), zeros(#ws), zeros(#bs)
            each(function(yi, wi, xi)
               dx[xi] = dx[xi] + gys[yi] * ws[wi]
               dw[wi] = dw[wi] + gys[yi] * xs[xi]
            end)
            for i = 1, #gys do
               local o = math.floor((i - 1) / plane) % c.o + 1
               db[o] = db[o] + gys[i]
            end
            y:backward(gy)
            check(x.grad, dx, tol, 'grad x')
            check(w.grad, dw, tol, 'grad weight')
            check(b.grad, db, tol, 'grad bias')
         end)
      end
   end

   it('conv_transpose2d with stride, output padding and groups agrees in float32 and float64', function()
      kbl.manual_seed(6)
      local x = kbl.randn({2, 4, 5, 6}, {dtype = 'float64', requires_grad = true})
      local w = kbl.randn({4, 3, 3, 3}, {dtype = 'float64', requires_grad = true})
      local b = kbl.randn({6}, {dtype = 'float64', requires_grad = true})
      local opts = {stride = 2, padding = 1, output_padding = 1, groups = 2}
      local y64 = kbl.conv_transpose2d(x, w, b, opts)
      local gy = kbl.randn(y64:size(), {dtype = 'float64'})
      y64:backward(gy)
      local x32, w32, b32 = x:detach():float():requires_grad_(), w:detach():float():requires_grad_(),
         b:detach():float():requires_grad_()
      local y32 = kbl.conv_transpose2d(x32, w32, b32, opts)
      assert.are.same({2, 6, 10, 12}, y32:size())
      y32:backward(gy:float())
      check(y32, H.flat(y64), TOL32, 'y')
      check(x32.grad, H.flat(x.grad), TOL32, 'grad x')
      check(w32.grad, H.flat(w.grad), TOL32, 'grad weight')
      check(b32.grad, H.flat(b.grad), TOL32, 'grad bias')
   end)
end)

-- ---- GEMM --------------------------------------------------------------------------

local function mm_ref(a, b)   -- 2-D lists of rows
   local m, k, n = #a, #b, #b[1]
   local out = {}
   for i = 1, m do
      for j = 1, n do
         local s = 0
         for p = 1, k do s = s + a[i][p] * b[p][j] end
         out[#out + 1] = s
      end
   end
   return out
end

describe('matmul on the CPU kernels', function()
   local function case(name, make_a, make_b)
      for _, dtype in ipairs{'float32', 'float64'} do
         it(name .. ' (' .. dtype .. ')', function()
            kbl.manual_seed(7)
            local a, b = make_a(dtype), make_b(dtype)
            local out = kbl.matmul(a, b)
            -- the reference: every batch matrix of the broadcast result
            local ad, bd = a:double(), b:double()
            local sa, sb = a:size(), b:size()
            local batch = {}
            for i = 1, #out:size() - 2 do batch[i] = out:size(i) end
            local function mat(t, s, idx)   -- idx: batch index, broadcast into t
               local v = t
               local nb = #s - 2
               for d = 1, nb do
                  local i = idx[#idx - nb + d]
                  v = v:select(1, s[d] == 1 and 1 or i)
               end
               return v:tolist()
            end
            local want = {}
            local function walk(prefix, d)
               if d > #batch then
                  for _, v in ipairs(mm_ref(mat(ad, sa, prefix), mat(bd, sb, prefix))) do want[#want + 1] = v end
                  return
               end
               for i = 1, batch[d] do
                  prefix[d] = i
                  walk(prefix, d + 1)
               end
               prefix[d] = nil
            end
            walk({}, 1)
            check(out, want, dtype == 'float32' and TOL32 or TOL64, name)
         end)
      end
   end
   local function randn(...)
      local shape = {...}
      return function(dtype) return kbl.randn(shape, {dtype = dtype}) end
   end
   case('1x1 times 1x1', randn(1, 1), randn(1, 1))
   case('odd sizes 7x13 times 13x5', randn(7, 13), randn(13, 5))
   case('a long inner dimension, 3x1000 times 1000x4', randn(3, 1000), randn(1000, 4))
   case('a bigger square, 96x130 times 130x70', randn(96, 130), randn(130, 70))
   case('transposed operands', function(dt) return kbl.randn({9, 6}, {dtype = dt}):t() end,
      function(dt) return kbl.randn({11, 9}, {dtype = dt}):t() end)
   case('a column slice (row stride larger than the width)',
      function(dt) return kbl.randn({5, 12}, {dtype = dt}):narrow(2, 3, 7) end, randn(7, 4))
   case('a strided view that needs a copy', function(dt)
      return kbl.randn({6, 16}, {dtype = dt}):reshape{6, 8, 2}:select(3, 1)
   end, randn(8, 3))
   case('batched with broadcast batch dims', randn(2, 1, 4, 5), randn(3, 5, 2))
   case('batched times a matrix', randn(3, 4, 5), randn(5, 6))

   it('linear with bias over a 3-D input matches the reference in float32 and its gradients', function()
      kbl.manual_seed(8)
      local x = kbl.randn({2, 3, 20}, {requires_grad = true})
      local w = kbl.randn({7, 20}, {requires_grad = true})
      local b = kbl.randn({7}, {requires_grad = true})
      local y = kbl.linear(x, w, b)
      local x64, w64, b64 = x:double(), w:double(), b:double()
      local want = kbl.matmul(x64, w64:t()) + b64
      check(y, H.flat(want), TOL32, 'y')
      local gy = kbl.randn({2, 3, 7})
      y:backward(gy)
      local g64 = gy:double()
      check(x.grad, H.flat(kbl.matmul(g64, w64)), TOL32, 'grad x')
      check(w.grad, H.flat(kbl.matmul(g64:reshape{6, 7}:t(), x64:reshape{6, 20})), TOL32, 'grad weight')
      check(b.grad, H.flat(g64:reshape{6, 7}:sum(1)), TOL32, 'grad bias')
   end)
end)

-- ---- average pooling: oneDNN for float32 (core/cpu/dnnl_pool.c), loops for float64 ----

describe('avg_pool2d on the CPU kernels', function()
   local CASES = {
      {name = '2x2 stride 2 (the CNN shape), even size', shape = {3, 16, 8, 8}, k = 2, o = {}},
      {name = '3x3 stride 2 padding 1, odd size, padding counted', shape = {2, 5, 7, 9}, k = 3,
         o = {stride = 2, padding = 1, count_include_pad = true}},
      {name = '3x2 strides 2x1 padding 1, padding not counted', shape = {1, 3, 6, 5}, k = {3, 2},
         o = {stride = {2, 1}, padding = 1, count_include_pad = false}},
      {name = 'odd size, floor output', shape = {2, 4, 9, 7}, k = 2, o = {}},
   }
   for _, c in ipairs(CASES) do
      it(c.name .. ': float32 agrees with the float64 loops, forward and backward, and repeats bit for bit', function()
         kbl.manual_seed(8)
         local x64 = kbl.randn(c.shape, {dtype = 'float64', requires_grad = true})
         local y64 = kbl.avg_pool2d(x64, c.k, c.o)
         local gy = kbl.randn(y64:size(), {dtype = 'float64'})
         y64:backward(gy)
         local runs = {}
         for r = 1, 2 do
            local x32 = x64:detach():float():requires_grad_()
            local y32 = kbl.avg_pool2d(x32, c.k, c.o)
            y32:backward(gy:float())
            check(y32, H.flat(y64), TOL32, 'y')
            check(x32.grad, H.flat(x64.grad), TOL32, 'grad x')
            runs[r] = {H.flat(y32:double()), H.flat(x32.grad:double())}
         end
         assert.are.same(runs[1], runs[2])
      end)
   end
end)

describe('softmax on the CPU kernels (oneDNN for float32)', function()
   it('agrees with float64 on rows of many widths and repeats bit for bit', function()
      kbl.manual_seed(9)
      for _, shape in ipairs{{1, 1}, {3, 10}, {128, 10}, {7, 1000}, {2, 3, 17}} do
         local x = kbl.randn(shape) * 4
         local want = H.flat(x:double():softmax(#shape))
         local a, b = x:softmax(#shape), x:softmax(#shape)
         check(a, want, TOL32, 'softmax ' .. table.concat(shape, 'x'))
         assert.are.same(H.flat(a), H.flat(b))
      end
   end)
end)

-- float32 sigmoid and tanh forward run on oneDNN's eltwise primitive in chunks
-- of KBL_ELTWISE_CHUNK (core/cpu/dnnl.h) elements (KBL_ELTWISE_SMALL for a
-- shorter input), the tail through a scratch chunk; strided inputs and float64
-- stay on kbl's loops.
describe('sigmoid and tanh on the CPU kernels (oneDNN for contiguous float32)', function()
   local CHUNK, SMALL = 16384, 1024 -- KBL_ELTWISE_CHUNK, KBL_ELTWISE_SMALL
   local sizes = {1, 7, SMALL - 1, SMALL, SMALL + 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5}

   -- largest |a - b| / |b| over the elements
   local function elem_rel(got, want)
      local a, b = H.flat(got:double()), H.flat(want)
      assert.are.equal(#b, #a, 'sizes differ')
      local e = 0
      for i = 1, #a do e = math.max(e, math.abs(a[i] - b[i]) / math.max(math.abs(b[i]), 1e-30)) end
      return e
   end

   it('log_softmax: float32 (exponentials on oneDNN) agrees with float64 and repeats at 1 and 2 threads', function()
      local saved = kbl.get_num_threads()
      finally(function() kbl.set_num_threads(saved) end)
      kbl.manual_seed(24)
      -- rows shorter than a chunk (blocks of rows), one row past it, and rows not filling the last block
      for _, shape in ipairs{{37, 1000}, {3, CHUNK + 7}, {1000, 3}, {5, 1}} do
         local x = kbl.randn(shape) * 5
         local got, want = H.flat(x:log_softmax(2)), H.flat(x:double():log_softmax(2))
         for i = 1, #want do
            -- (x - m) - log s: an absolute error of a few float32 ulps of the row's spread
            assert(math.abs(got[i] - want[i]) <= 1e-5 * math.max(1, math.abs(want[i])),
               string.format('%dx%d: element %d is %.9g, float64 says %.9g', shape[1], shape[2], i, got[i], want[i]))
         end
         kbl.set_num_threads(1)
         local one = H.flat(x:log_softmax(2))
         kbl.set_num_threads(2)
         assert.are.same(one, H.flat(x:log_softmax(2)), table.concat(shape, 'x'))
         assert.are.same(one, got)
      end
      -- -inf entries and a row of -inf, as the float64 loop gives them
      local x = kbl.tensor{{0, -math.huge, 1}, {-math.huge, -math.huge, -math.huge}}
      local got, want = H.flat(x:log_softmax(2)), H.flat(x:double():log_softmax(2))
      for i = 1, 6 do
         assert(got[i] == want[i] or (got[i] ~= got[i] and want[i] ~= want[i]) or math.abs(got[i] - want[i]) < 1e-6,
            string.format('element %d is %s, float64 says %s', i, tostring(got[i]), tostring(want[i])))
      end
   end)

   it('cross_entropy: float32 (exponentials on oneDNN) agrees with float64, loss and gradient, '
      .. 'and repeats at 1 and 2 threads', function()
      local saved = kbl.get_num_threads()
      finally(function() kbl.set_num_threads(saved) end)
      kbl.manual_seed(25)
      for _, shape in ipairs{{37, 1000}, {3, CHUNK + 7}, {1000, 3}} do
         local rows, cols = shape[1], shape[2]
         local x = kbl.randn(shape) * 4
         local labels = kbl.randint(1, cols + 1, {rows})
         labels[1] = 2 -- an ignored row
         local w = kbl.rand({cols}) + 0.5
         for _, o in ipairs{{}, {weight = w, label_smoothing = 0.1, ignore_index = 2, reduction = 'none'},
                            {label_smoothing = 0.2, reduction = 'sum'}} do
            local function run(dtype, threads)
               if threads then kbl.set_num_threads(threads) end
               local xi = x:to(dtype):detach():requires_grad_()
               local oo = {}
               for k, v in pairs(o) do oo[k] = k == 'weight' and v:to(dtype) or v end
               local loss = kbl.cross_entropy(xi, labels, oo)
               loss:sum():backward()
               return H.flat(loss), H.flat(xi.grad)
            end
            local name = table.concat(shape, 'x') .. ' ' .. (o.reduction or 'mean')
            local l32, g32 = run('float32', 1)
            local l64, g64 = run('float64')
            for i = 1, #l64 do
               assert(math.abs(l32[i] - l64[i]) <= 1e-5 * math.max(1, math.abs(l64[i])), name .. ': loss ' .. i)
            end
            for i = 1, #g64 do
               assert(math.abs(g32[i] - g64[i]) <= 1e-6 * math.max(1, math.abs(g64[i])),
                  string.format('%s: gradient %d is %.9g, float64 says %.9g', name, i, g32[i], g64[i]))
            end
            local l2, g2 = run('float32', 2)
            assert.are.same(l32, l2, name)
            assert.are.same(g32, g2, name)
         end
      end
   end)

   for _, op in ipairs{'sigmoid', 'tanh'} do
      it(op .. ': float32 agrees with float64 within 1e-6 of each value on sizes around the chunk', function()
         kbl.manual_seed(21)
         for _, n in ipairs(sizes) do
            local x = kbl.randn(n) * 4
            local e = elem_rel(x[op](x), x:double()[op](x:double()))
            assert(e <= 1e-6, string.format('%s n=%d: relative error %.3g', op, n, e))
         end
         local x = kbl.randn(130, 257):t() -- strided: kbl's loop
         assert.is_false(x:is_contiguous())
         local e = elem_rel(x[op](x), x:double()[op](x:double()))
         assert(e <= 1e-6, string.format('%s non-contiguous: relative error %.3g', op, e))
         local y = x[op](x)
         assert.are.same({257, 130}, y:size())
      end)

      it(op .. ': float32 repeats bit for bit across runs and at 1 and 2 threads, '
         .. 'whatever the element position', function()
         local saved = kbl.get_num_threads()
         finally(function() kbl.set_num_threads(saved) end)
         kbl.manual_seed(22)
         local n = 3 * CHUNK + 5
         local x = kbl.randn(n) * 4
         kbl.set_num_threads(1)
         local one = H.flat(x[op](x))
         kbl.set_num_threads(2)
         local two, again = H.flat(x[op](x)), H.flat(x[op](x))
         assert.are.same(one, two)
         assert.are.same(two, again)
         -- the same values elsewhere (a short input, the tail of a long one) give the same results
         local head = H.flat(x:narrow(1, 1, 7)[op](x:narrow(1, 1, 7)))
         local moved = kbl.cat({kbl.zeros(CHUNK * 2 + 3), x:narrow(1, 1, 7)}, 1)
         local got = H.flat(moved[op](moved))
         for i = 1, 7 do
            assert.are.equal(one[i], head[i])
            assert.are.equal(one[i], got[CHUNK * 2 + 3 + i])
         end
      end)

      it(op .. ': the float32 gradient agrees with float64', function()
         kbl.manual_seed(23)
         local x = (kbl.randn(CHUNK + 9) * 3):requires_grad_()
         local g = kbl.randn(CHUNK + 9)
         x[op](x):backward(g)
         local x64 = x:detach():double():requires_grad_()
         x64[op](x64):backward(g:double())
         check(x.grad, H.flat(x64.grad), TOL32, op .. ' gradient')
      end)
   end
end)

describe('layer_norm and group_norm rows on the CPU kernels', function()
   -- rows wider than the kernels' 64-parameter blocks and not a multiple of them;
   -- group_norm on 1x1 maps has one element per parameter, like layer_norm
   local CASES = {
      {'layer_norm [37, 100]', {37, 100}, function(x, w, b) return kbl.layer_norm(x, {100}, w, b) end, {100}},
      {'group_norm [5, 300, 1, 1], 3 groups', {5, 300, 1, 1},
         function(x, w, b) return kbl.group_norm(x, 3, w, b) end, {300}},
   }
   for _, c in ipairs(CASES) do
      it(c[1] .. ': float32 agrees with float64, gradients too, and repeats bit for bit', function()
         kbl.manual_seed(10)
         local x64 = kbl.randn(c[2], {dtype = 'float64', requires_grad = true})
         local w64 = kbl.randn(c[4], {dtype = 'float64', requires_grad = true})
         local b64 = kbl.randn(c[4], {dtype = 'float64', requires_grad = true})
         local y64 = c[3](x64, w64, b64)
         local gy = kbl.randn(y64:size(), {dtype = 'float64'})
         y64:backward(gy)
         local runs = {}
         for r = 1, 2 do
            local x, w, b = x64:detach():float():requires_grad_(), w64:detach():float():requires_grad_(),
               b64:detach():float():requires_grad_()
            local y = c[3](x, w, b)
            y:backward(gy:float())
            check(y, H.flat(y64), 1e-5, 'y')
            check(x.grad, H.flat(x64.grad), 1e-4, 'grad x')
            check(w.grad, H.flat(w64.grad), 1e-5, 'grad weight')
            check(b.grad, H.flat(b64.grad), 1e-5, 'grad bias')
            runs[r] = {H.flat(y), H.flat(x.grad), H.flat(w.grad), H.flat(b.grad)}
         end
         assert.are.same(runs[1], runs[2])
      end)
   end
end)

describe('kbl info', function()
   it('names oneDNN, its version, the instruction set it runs and strict float32 math', function()
      local rc, out = H.run('KBL_BUILD_DIR=' .. (os.getenv('KBL_BUILD_DIR') or 'build') .. ' bin/kbl info')
      assert.are.equal(0, rc, out)
      assert.matches('\nCPU kernels: oneDNN %d+%.%d+%.%d+ %(ISA: [^;]+; math: strict float32; '
         .. 'threading: openmp%)\n', out)
      rc, out = H.run('KBL_BUILD_DIR=' .. (os.getenv('KBL_BUILD_DIR') or 'build') .. ' bin/kbl info --json')
      assert.are.equal(0, rc, out)
      assert.matches('oneDNN', require('dkjson').decode(out).cpu_kernels)
   end)
end)
