-- data augmentations: each batched kernel against what it must do, computed in
-- Lua; the one-pass path (gather, normalize, crop, flip fused in C) against the
-- separate kernels; errors name the op and the shapes.
local kbl = require 'kbl'
local data = require 'kbl.data'
local B = require 'kbl.data.base'

-- B images [c, h, w] of distinct values (uniform in [0, 1)), labels 1..3.
local function images(n, c, h, w, seed)
   kbl.manual_seed(seed or 1)
   local ys = {}
   for i = 1, n do ys[i] = i % 3 + 1 end
   return data.tensors{train = {x = kbl.rand(n, c, h, w), y = kbl.tensor(ys, {dtype = 'int64'})}}
end

-- The batch before augmentation and after, for the same rows.
local function before_after(src, n, add)
   local plain = src:split('train'):batch(n)
   return plain:iter()(), add(src:split('train'):batch(n)):iter()()
end

local function max_diff(a, b) return (a - b):abs():max():item() end

-- A copy of image [c, h, w] shifted so out(i, j) = img(i + dy, j + dx), 0 outside.
local function shifted(img, dy, dx, oh, ow)
   local c, h, w = img:size(1), img:size(2), img:size(3)
   oh, ow = oh or h, ow or w
   local src = img:tolist()
   local out = {}
   for k = 1, c do
      out[k] = {}
      for i = 1, oh do
         out[k][i] = {}
         for j = 1, ow do
            local si, sj = i + dy, j + dx
            out[k][i][j] = (si >= 1 and si <= h and sj >= 1 and sj <= w) and src[k][si][sj] or 0
         end
      end
   end
   return kbl.tensor(out)
end

-- Materializes each batch right after batch(), so every op runs as its own kernel.
local function separate(p) return p:map(function(b) return b end, {batched = true}) end

describe('data augmentations', function()
   it('normalize subtracts the mean and divides by the std, per channel', function()
      local src = images(6, 3, 2, 2)
      local a, b = before_after(src, 6, function(p) return p:normalize{mean = {0.1, 0.2, 0.3}, std = {0.5, 2, 4}} end)
      local mean = kbl.tensor({0.1, 0.2, 0.3}):view(1, 3, 1, 1)
      local std = kbl.tensor({0.5, 2, 4}):view(1, 3, 1, 1)
      assert.is_true(max_diff(b.x, (a.x - mean) / std) < 1e-6)
      local one = src:split('train'):batch(6):normalize{mean = 0.5, std = 0.25}:iter()()
      assert.is_true(max_diff(one.x, (a.x - 0.5) / 0.25) < 1e-6)
      assert.same(a.y:tolist(), b.y:tolist())
   end)

   it('random_flip mirrors some images and leaves the others, as p says', function()
      local src = images(40, 2, 3, 5)
      local a, b = before_after(src, 40, function(p) return p:random_flip{} end)
      local flipped = 0
      for i = 1, 40 do
         local x, y = a.x[i], b.x[i]
         if max_diff(y, x) ~= 0 then
            assert.equals(0, max_diff(y, x:flip(3)))
            flipped = flipped + 1
         end
      end
      assert.is_true(flipped > 8 and flipped < 32, 'about half flipped, got ' .. flipped)
      local _, all = before_after(src, 40, function(p)
         return p:random_flip{vertical = true, horizontal = false, p = 1}
      end)
      assert.equals(0, max_diff(all.x, a.x:flip(3)))
      local _, none = before_after(src, 40, function(p) return p:random_flip{p = 0} end)
      assert.equals(0, max_diff(none.x, a.x))
   end)

   it('random_crop takes a window of the zero-padded image at a random place', function()
      local src = images(12, 2, 4, 5)
      local a, b = before_after(src, 12, function(p) return p:random_crop{size = {3, 4}, padding = {1, 2}} end)
      assert.same({12, 2, 3, 4}, b.x:size())
      local offsets = {}
      for i = 1, 12 do
         local found
         for dy = -1, 2 do
            for dx = -2, 3 do
               if not found and max_diff(b.x[i], shifted(a.x[i], dy, dx, 3, 4)) == 0 then found = dy .. ',' .. dx end
            end
         end
         assert.is_not_nil(found, 'element ' .. i .. ' is no window of its padded image')
         offsets[found] = true
      end
      local distinct = 0
      for _ in pairs(offsets) do distinct = distinct + 1 end
      assert.is_true(distinct > 3)
   end)

   it('random_translate shifts each image by at most max pixels, filling with fill', function()
      local src = images(12, 1, 5, 5)
      local a, b = before_after(src, 12, function(p) return p:random_translate{max = 2} end)
      assert.same({12, 1, 5, 5}, b.x:size())
      for i = 1, 12 do
         local ok = false
         for dy = -2, 2 do
            for dx = -2, 2 do ok = ok or max_diff(b.x[i], shifted(a.x[i], dy, dx)) == 0 end
         end
         assert.is_true(ok, 'element ' .. i)
      end
      local _, f = before_after(src, 12, function(p) return p:random_translate{max = {0, 4}, fill = -1} end)
      assert.is_true(f.x:min():item() == -1)
   end)

   it('gaussian_noise adds noise of the given std, the same for the same seed', function()
      local src = images(64, 1, 8, 8)
      local a, b = before_after(src, 64, function(p) return p:gaussian_noise{std = 0.5, seed = 3} end)
      local d = b.x - a.x
      assert.is_true(math.abs(d:mean():item()) < 0.03)
      assert.is_true(math.abs(d:std():item() - 0.5) < 0.03)
      local _, again = before_after(src, 64, function(p) return p:gaussian_noise{std = 0.5, seed = 3} end)
      assert.equals(0, max_diff(again.x, b.x))
      local _, other = before_after(src, 64, function(p) return p:gaussian_noise{std = 0.5, seed = 4} end)
      assert.is_true(max_diff(other.x, b.x) > 0)
   end)

   it('random_erasing fills one rectangle per image with value, of an area in scale', function()
      local src = images(20, 2, 10, 10)
      local a, b = before_after(src, 20, function(p)
         return p:random_erasing{p = 1, scale = {0.1, 0.3}, value = -5}
      end)
      local erased = 0
      for i = 1, 20 do
         local mask = b.x[i]:eq(-5)
         local n = mask:sum():item()
         if n > 0 then
            erased = erased + 1
            local per = n / 2
            assert.is_true(per >= 4 and per <= 36, 'area ' .. per)
            -- outside the rectangle nothing changed
            local kept = kbl.where(mask, a.x[i], b.x[i])
            assert.equals(0, max_diff(kept, a.x[i]))
         end
      end
      assert.is_true(erased >= 18)
      local _, none = before_after(src, 20, function(p) return p:random_erasing{p = 0} end)
      assert.equals(0, max_diff(none.x, a.x))
   end)

   it('mixup mixes each image with one of the batch and makes soft targets', function()
      local src = images(16, 1, 3, 3)
      local a, b = before_after(src, 16, function(p) return p:mixup{alpha = 0.5} end)
      assert.same({16, 3}, b.y:size())
      assert.equals('float32', b.y.dtype)
      assert.is_true(max_diff(b.y:sum(2), kbl.ones(16)) < 1e-6)
      assert.is_true(b.y:min():item() >= 0)
      -- lam with out = lam xi + (1 - lam) xk, or nil
      local function mix_of(out, xi, xk)
         local d = xi - xk
         local nn = (d * d):sum():item()
         if nn < 1e-12 then return max_diff(out, xi) < 1e-5 and 1 or nil end
         local lam = ((out - xk) * d):sum():item() / nn
         if lam < -1e-4 or lam > 1 + 1e-4 or max_diff(out, xi * lam + xk * (1 - lam)) > 1e-5 then return nil end
         return lam
      end
      local labels = a.y:tolist()
      local mixed = 0
      for i = 1, 16 do
         local soft = b.y[i]:tolist()
         local found = false
         for k = 1, 16 do
            local lam = mix_of(b.x[i], a.x[i], a.x[k])
            if lam and labels[k] ~= labels[i] then
               if math.abs(soft[labels[i]] - lam) < 1e-4 and math.abs(soft[labels[k]] - (1 - lam)) < 1e-4 then
                  found = true
                  if lam < 0.99 then mixed = mixed + 1 end
               end
            elseif lam then
               found = found or math.abs(soft[labels[i]] - 1) < 1e-6
            end
         end
         assert.is_true(found, 'element ' .. i .. ' is no mix of two batch images with matching targets')
      end
      assert.is_true(mixed > 4)
      assert.has_error(function()
         data.tensors{train = {x = kbl.rand(4, 1, 2, 2), y = kbl.rand(4)}}:split('train'):batch(4):mixup{}
      end, 'data: mixup needs num_classes (the source meta has none; pass mixup{num_classes = C})')
   end)

   it('gives the same batches in one fused pass as with separate kernels', function()
      -- bytes gathered as floats / 255, as Fashion-MNIST is
      kbl.manual_seed(4)
      local bytes = kbl.randint(0, 256, {30, 3, 6, 7}, {dtype = 'uint8'})
      local base = B.new{x = bytes, y = kbl.ones({30}, {dtype = 'int64'}), x_dtype = 'float32', x_scale = 1 / 255}
      local src = data.Source.new{name = 'bytes', splits = {train = base}, meta = {num_classes = 1}}
      local chains = {
         function(p)
            return p:normalize{mean = {0.5, 0.4, 0.3}, std = {0.2, 0.3, 0.4}}:random_crop{size = 6, padding = 2}
               :random_flip{}
         end,
         function(p) return p:random_translate{max = {1, 3}, fill = 0.5}:random_flip{vertical = true, p = 0.7} end,
         function(p) return p:random_crop{size = {4, 9}, padding = {0, 2}} end,
         function(p) return p:random_flip{horizontal = false, vertical = true} end,
         function(p) return p:normalize{mean = 0.5, std = 0.5}:random_flip{}:gaussian_noise{std = 0.1} end,
      }
      for k, chain in ipairs(chains) do
         local fused = chain(src:split('train'):shuffle{seed = k}:batch(8))
         local apart = chain(separate(src:split('train'):shuffle{seed = k}:batch(8)))
         local fb, ab = {}, {}
         for bt in fused:iter() do fb[#fb + 1] = bt end
         for bt in apart:iter() do ab[#ab + 1] = bt end
         assert.equals(#ab, #fb)
         for i = 1, #fb do
            assert.same(ab[i].x:size(), fb[i].x:size())
            assert.is_true(max_diff(fb[i].x, ab[i].x) < 1e-5, 'chain ' .. k .. ' batch ' .. i)
         end
      end
   end)

   it('names the op and the shapes on bad input', function()
      local src = images(4, 1, 4, 4)
      local crop = src:split('train'):batch(4):random_crop{size = 9, padding = 1}
      local ok, e = pcall(function() return crop:iter()() end)
      assert.is_false(ok)
      assert.matches('random_crop: cannot take 9x9 from images 4x4 padded by (1, 1)', e, 1, true)
      local vec = data.tensors{train = {x = kbl.rand(4, 3), y = {1, 2, 1, 2}}}
      ok, e = pcall(function() return vec:split('train'):batch(4):random_flip{}:iter()() end)
      assert.is_false(ok)
      assert.matches('random_flip: expects a batch [B, ..., H, W] (after batch()), got [4, 3] float32', e, 1, true)
      ok, e = pcall(function() return src:split('train'):batch(4):normalize{mean = {0, 0}, std = {1, 1}}:iter()() end)
      assert.is_false(ok)
      assert.matches('normalize: 2 channel means/stds given, but the batch [4, 1, 4, 4] float32 has 1 channels', e,
         1, true)
      local f64 = data.tensors{train = {x = kbl.rand({2, 1, 2, 2}, {dtype = 'float64'}), y = {1, 1}}}
      ok, e = pcall(function() return f64:split('train'):batch(2):random_flip{}:iter()() end)
      assert.is_false(ok)
      assert.matches('random_flip: expects a float32 batch x, got [2, 1, 2, 2] float64', e, 1, true)
      assert.has_error(function() src:split('train'):batch(2):random_crop{} end)
      assert.has_error(function() src:split('train'):batch(2):random_flip{p = 2} end)
      assert.has_error(function() src:split('train'):batch(2):normalize{mean = 0, std = 0} end)
   end)
end)
