-- data.image_folder, the image decoding and resizing kernels, and `kbl data export`,
-- on a few tiny images written here.
local H = require 'helper'
local kbl = require 'kbl'
local data = require 'kbl.data'
local ffi = require 'ffi'
local C = kbl.lib.C
local T = require 'kbl.tensor'

local function write_image(path, t)
   if C.kbl_data_image_write(path, T.live(t)) ~= 0 then error(ffi.string(C.kbl_last_error())) end
end

-- A grey image whose pixels encode (class, index, position).
local function grey(c, i, h, w)
   local rows = {}
   for y = 1, h do
      rows[y] = {}
      for x = 1, w do rows[y][x] = (c * 40 + i * 7 + y * 3 + x) % 256 end
   end
   return kbl.tensor({rows}, {dtype = 'uint8'})
end

-- An 8x8 JPEG of flat RGB (200, 100, 50), quality 95 (made with stb_image_write,
-- whose JPEG coder kbl does not ship: UBSan flags shifts inside it).
local JPEG_HEX = table.concat{
   'ffd8ffe000104a46494600010100000100010000ffdb00840002010101010102010101020202020204030202020205040403' ..
   '04060506060605060606070908060709070606080b08090a0a0a0a0a06080b0c0b0a0c090a0a0a0102020202020205030305' ..
   '0a0706070a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a' ..
   '0a0a0a0affc00011080008000803011100021101031101ffc401a20000010501010101010100000000000000000102030405' ..
   '060708090a0b100002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1' ..
   'c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a63646566' ..
   '6768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4' ..
   'c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa010003010101010101010101000000' ..
   '0000000102030405060708090a0b110002010204040304070504040001027700010203110405213106124151076171132232' ..
   '8108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a35363738393a434445464748494a535455' ..
   '565758595a636465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3' ..
   'b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9faffda000c030100' ..
   '02110311003f00a15fcb07f6c1ffd9',
}
local function write_jpeg(path)
   H.write(path, (JPEG_HEX:gsub('%x%x', function(h) return string.char(tonumber(h, 16)) end)))
end

local function folder(root, classes, per, h, w, ext)
   for c, name in ipairs(classes) do
      os.execute("mkdir -p '" .. root .. '/' .. name .. "'")
      for i = 1, per do write_image(string.format('%s/%s/%02d.%s', root, name, i, ext or 'png'), grey(c, i, h, w)) end
   end
   return root
end

local function all(pipe)
   local xs, ys = {}, {}
   for b in pipe:iter() do
      xs[#xs + 1] = b.x
      ys[#ys + 1] = b.y
   end
   return kbl.cat(xs, 1), kbl.cat(ys, 1)
end

describe('data.image_folder', function()
   local tmp
   setup(function() tmp = H.tmpdir() end)
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('takes classes from the sorted subfolders and labels 1..C in that order', function()
      local root = folder(tmp .. '/basic', {'zebra', 'ant', 'moose'}, 3, 4, 5)
      os.execute('echo notes > ' .. root .. '/ant/README.txt')
      local src = data.image_folder{root = root, channels = 1}
      assert.are.same({'ant', 'moose', 'zebra'}, src.meta.class_names)
      assert.are.equal(3, src.meta.num_classes)
      assert.are.same({1, 4, 5}, src.meta.shapes.x)
      assert.are.equal(9, src:size('train'))
      assert.are.equal(1, src.meta.ignored)
      local x, y = all(src:split('train'):batch(4))
      assert.are.same({1, 1, 1, 2, 2, 2, 3, 3, 3}, y:tolist())
      -- the first file of 'ant' is class 2 of the writer's list (ant was written second)
      H.assert_close(x:narrow(1, 1, 1), grey(2, 1, 4, 5):view(1, 1, 4, 5):to('float32') / 255, 1e-6)
      H.assert_close(x:narrow(1, 9, 1), grey(1, 3, 4, 5):view(1, 1, 4, 5):to('float32') / 255, 1e-6)
   end)

   it('decodes PNG, BMP and JPEG, grey or RGB', function()
      local root = tmp .. '/formats'
      os.execute('mkdir -p ' .. root .. '/a ' .. root .. '/b')
      -- RGB: red 200, green 100, blue 50 everywhere; JPEG keeps flat colours within a step or two
      local rgb = kbl.cat({kbl.full({1, 8, 8}, 200), kbl.full({1, 8, 8}, 100), kbl.full({1, 8, 8}, 50)}, 1)
         :to('uint8')
      write_image(root .. '/a/1.png', rgb)
      write_image(root .. '/a/2.bmp', rgb)
      write_jpeg(root .. '/b/3.jpg')
      write_jpeg(root .. '/b/4.JPEG')
      local src = data.image_folder{root = root, channels = 3}
      local x = all(src:split('train'):batch(4))
      assert.are.same({4, 3, 8, 8}, x:size())
      local want = {200 / 255, 100 / 255, 50 / 255}
      for i = 1, 4 do
         for c = 1, 3 do
            local plane = x:narrow(1, i, 1):narrow(2, c, 1)
            local tol = i <= 2 and 1e-6 or 3 / 255
            assert.is_true(math.abs(plane:mean():item() - want[c]) <= tol, 'image ' .. i .. ' channel ' .. c)
            assert.is_true((plane - want[c]):abs():max():item() <= tol, 'image ' .. i .. ' channel ' .. c)
         end
      end
      -- grey: stb's luminance (77 r + 150 g + 29 b) / 256
      local g = all(data.image_folder{root = root, channels = 1}:split('train'):batch(4))
      assert.are.same({4, 1, 8, 8}, g:size())
      local lum = math.floor((200 * 77 + 100 * 150 + 50 * 29) / 256) / 255
      H.assert_close(g:narrow(1, 1, 2), kbl.full({2, 1, 8, 8}, lum), 1e-6)
   end)

   it('resizes like PyTorch bilinear interpolate (align_corners = false)', function()
      local x = kbl.tensor({{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 12}}):view(1, 1, 3, 4) / 12
      -- torch.nn.functional.interpolate(x, size=(5, 7), mode='bilinear', align_corners=False), torch 1.13
      local up = {0.0, 0.0297619, 0.077381, 0.125, 0.1726191, 0.2202381, 0.25, 0.1333334, 0.1630953, 0.2107143,
         0.2583334, 0.3059524, 0.3535714, 0.3833334, 0.3333334, 0.3630953, 0.4107143, 0.4583333, 0.5059524, 0.5535715,
         0.5833334, 0.5333334, 0.5630953, 0.6107143, 0.6583334, 0.7095239, 0.7857143, 0.8333334, 0.6666667, 0.6964285,
         0.7440476, 0.7916667, 0.8452381, 0.9404762, 1.0}
      local down = {0.0972222, 0.2083333, 0.3194444, 0.5972223, 0.7083333, 0.8715278}
      local r = T.wrap(C.kbl_data_resize(T.live(x), 5, 7))
      assert.are.same({1, 1, 5, 7}, r:size())
      H.assert_close(r:view(35), up, 2e-7)
      H.assert_close(T.wrap(C.kbl_data_resize(T.live(x), 2, 3)):view(6), down, 2e-7)
      -- the same kernel behind image_folder{size =}: a 3x4 file made 5x7
      local root = tmp .. '/resize'
      os.execute('mkdir -p ' .. root .. '/a')
      local px = kbl.tensor({{{0, 20, 40, 60}, {80, 100, 120, 140}, {160, 180, 200, 255}}}, {dtype = 'uint8'})
      write_image(root .. '/a/1.png', px)
      local src = data.image_folder{root = root, channels = 1, size = {5, 7}}
      local got = all(src:split('train'):batch(1))
      local ref = T.wrap(C.kbl_data_resize(T.live(px:to('float32'):view(1, 1, 3, 4) / 255), 5, 7))
      H.assert_close(got, ref, 1e-6)
      assert.is_true(C.kbl_data_resize(T.live(x), 0, 3) == nil)
      assert.matches('resize: the size must be 1..65536', ffi.string(C.kbl_last_error()))
   end)

   it('center-crops after resizing', function()
      local root = folder(tmp .. '/crop', {'a'}, 1, 6, 8)
      local full = all(data.image_folder{root = root, channels = 1}:split('train'):batch(1))
      local src = data.image_folder{root = root, channels = 1, crop = {4, 5}}
      assert.are.same({1, 4, 5}, src.meta.shapes.x)
      local x = all(src:split('train'):batch(1))
      H.assert_close(x, full:narrow(3, 2, 4):narrow(4, 2, 5), 0)
      local ok, err = pcall(data.image_folder, {root = root, crop = 9})
      assert.is_false(ok)
      assert.matches('crop 9x9 is larger than the images %(6x8%)', err)
   end)

   it('refuses images of another size unless asked to resize, naming the file', function()
      local root = folder(tmp .. '/sizes', {'a'}, 2, 4, 4)
      write_image(root .. '/a/03.png', grey(1, 3, 5, 4))
      local ok, err = pcall(function()
         return all(data.image_folder{root = root, channels = 1}:split('train'):batch(3))
      end)
      assert.is_false(ok)
      assert.matches('sizes/a/03.png: image is 5x4', err)
      assert.matches('give size = {h, w} to resize', err, 1, true)
      local x = all(data.image_folder{root = root, channels = 1, size = 4}:split('train'):batch(3))
      assert.are.same({3, 1, 4, 4}, x:size())
   end)

   it('names a corrupt or unreadable file, or with skip_bad skips and reports it', function()
      local root = folder(tmp .. '/bad', {'a', 'b'}, 3, 4, 4)
      -- a truncated PNG, a text file named .png, an empty file and a dangling link
      local png = H.read(root .. '/a/01.png')
      H.write(root .. '/a/02.png', png:sub(1, 40))
      H.write(root .. '/b/01.png', 'not an image at all')
      H.write(root .. '/b/02.png', '')
      os.execute('ln -s ' .. root .. '/missing.png ' .. root .. '/b/04.png')
      local cases = {
         {'a/02.png', 'corrupt image'}, {'b/01.png', 'not a PNG, JPEG or BMP image'}, {'b/02.png', 'empty file'},
         {'b/04.png', 'cannot open: No such file or directory'},
      }
      local src = data.image_folder{root = root, channels = 1}
      for _, case in ipairs(cases) do
         local ids = {}
         for i, p in ipairs(src.bases.train.paths) do if p:sub(-#case[1]) == case[1] then ids[1] = i end end
         local i = ids[1]
         local ok, err = pcall(function() return all(src:split('train'):skip(i - 1):take(1):batch(1)) end)
         assert.is_false(ok, case[1])
         assert.matches('image_folder: ' .. root:gsub('%p', '%%%0') .. '/' .. case[1]:gsub('%p', '%%%0'), err)
         assert.matches(case[2], err, 1, true)
      end
      -- skip_bad: the good images come through, the bad are counted at the end of the epoch
      local skip = data.image_folder{root = root, channels = 1, skip_bad = true}
      local pipe = skip:split('train'):shuffle{seed = 3}:batch(3):prefetch(2)
      local errf = os.tmpname()
      local saved = io.stderr
      rawset(io, 'stderr', assert(io.open(errf, 'w')))
      local ok, x, y = pcall(all, pipe)
      io.stderr:close()
      rawset(io, 'stderr', saved)
      assert.is_true(ok, x)
      assert.are.equal(3, x:size(1))
      assert.are.equal(3, y:size(1))
      assert.are.equal(4, pipe.skipped)
      local report = H.read(errf)
      os.remove(errf)
      assert.matches('skipped 4 unreadable images in epoch 1', report, 1, true)
   end)

   it('splits by fractions of each class from a seed, or by file lists', function()
      local root = folder(tmp .. '/splits', {'a', 'b'}, 10, 2, 2)
      local s1 = data.image_folder{root = root, channels = 1, validation = 0.2, test = 0.1, seed = 5}
      assert.are.equal(14, s1:size('train'))
      assert.are.equal(4, s1:size('validation'))
      assert.are.equal(2, s1:size('test'))
      local _, yv = all(s1:split('validation'):batch(10))
      assert.are.same({1, 1, 2, 2}, yv:tolist())   -- stratified
      local s2 = data.image_folder{root = root, channels = 1, validation = 0.2, test = 0.1, seed = 5}
      assert.are.same(s1.bases.validation.paths, s2.bases.validation.paths)
      local s3 = data.image_folder{root = root, channels = 1, validation = 0.2, test = 0.1, seed = 6}
      assert.are_not.same(s1.bases.validation.paths, s3.bases.validation.paths)
      -- a list file: paths relative to the root
      H.write(tmp .. '/val.txt', '# held out\na/03.png\n\nb/07.png\n')
      local s4 = data.image_folder{root = root, channels = 1, splits = {validation = tmp .. '/val.txt'}}
      assert.are.same({root .. '/a/03.png', root .. '/b/07.png'}, s4.bases.validation.paths)
      assert.are.equal(18, s4:size('train'))
      H.write(tmp .. '/bad.txt', 'a/99.png\n')
      local ok, err = pcall(data.image_folder, {root = root, splits = {validation = tmp .. '/bad.txt'}})
      assert.is_false(ok)
      assert.matches('lists a/99.png, which is not an image under', err, 1, true)
   end)

   it('checks its options, with did-you-mean', function()
      local root = folder(tmp .. '/opts', {'a'}, 1, 2, 2)
      local ok, err = pcall(data.image_folder, {root = root, chanels = 1})
      assert.is_false(ok)
      assert.matches("unknown option 'chanels' (did you mean 'channels'?)", err, 1, true)
      local _
      _, err = pcall(data.image_folder, {root = root, channels = 2})
      assert.matches('channels must be 1 %(grey%) or 3 %(RGB%), got 2', err)
      _, err = pcall(data.image_folder, {root = tmp .. '/nope'})
      assert.matches('nope is not a directory', err, 1, true)
      _, err = pcall(data.image_folder, {root = root, validation = 1.5})
      assert.matches('validation must be a fraction in %[0, 1%)', err)
   end)

   it('gives the same batches with prefetch threads and resumes mid-epoch from state()', function()
      local root = folder(tmp .. '/resume', {'a', 'b', 'c'}, 7, 6, 6)
      local src = data.image_folder{root = root, channels = 1}
      local function pipe(threads)
         local p = src:split('train'):shuffle{seed = 9}:batch(4):random_crop{size = 4}:random_flip{}
         return threads and p:prefetch(3, {threads = threads}) or p
      end
      local x0, y0 = all(pipe())
      local x2, y2 = all(pipe(2))
      assert.are.equal(H.bytes(x0), H.bytes(x2))
      assert.are.same(y0:tolist(), y2:tolist())
      -- stop after two batches of epoch 2, then resume in a fresh pipeline
      local p = pipe(2)
      all(p)
      local it = p:iter()
      it()
      it()
      local st = p:state()
      local rest = {}
      for b in it do rest[#rest + 1] = b.x end
      local q = pipe(1)
      q:set_state(st)
      local again = {}
      for b in q:iter() do again[#again + 1] = b.x end
      assert.are.equal(#rest, #again)
      assert.are.equal(H.bytes(kbl.cat(rest, 1)), H.bytes(kbl.cat(again, 1)))
   end)

   it('kbl data export writes Fashion-MNIST as PNG folders that read back bit-exact', function()
      if not H.exists('/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz')
         and not H.exists('/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte') then
         return pending('dataset-fashion-mnist is not installed')
      end
      local out = tmp .. '/fm'
      local rc, stdout, stderr = H.kbl('data export fashion_mnist --out ' .. out .. ' --limit 40', tmp)
      assert.are.equal(0, rc, stderr)
      assert.matches('wrote 40 images', stdout)
      assert.is_true(H.exists(out .. '/T-shirt_top'))
      local src = data.image_folder{root = out, channels = 1}
      assert.are.equal(40, src:size('train'))
      local x = all(src:split('train'):batch(40))
      local fm = data.fashion_mnist{validation = 0}
      local ref = fm:split('train'):take(40):batch(40):iter()().x
      local names = src.meta.class_names
      local fm_names = fm.meta.class_names
      local _, y = all(src:split('train'):batch(40))
      local ref_y = fm:split('train'):take(40):batch(40):iter()().y:tolist()
      for i, p in ipairs(src.bases.train.paths) do
         local k = tonumber(p:match('(%d+)%.png$'))
         assert.are.equal(H.bytes(ref:narrow(1, k, 1)), H.bytes(x:narrow(1, i, 1)), p)
         assert.are.equal(fm_names[ref_y[k]]:gsub('/', '_'), names[y:tolist()[i]])
      end
   end)
end)
