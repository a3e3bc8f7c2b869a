-- data readers and sources: IDX (plain and gzip), CSV, .npy, tensors and
-- tables, generated data, Fashion-MNIST; every bad-file case names the file.
local kbl = require 'kbl'
local data = require 'kbl.data'

local tmp
local function path(name) return tmp .. '/' .. name end
local function write(name, bytes)
   local f = assert(io.open(path(name), 'wb'))
   f:write(bytes)
   f:close()
   return path(name)
end
local function err_of(fn, ...)
   local ok, e = pcall(fn, ...)
   assert.is_false(ok, 'expected an error')
   return tostring(e)
end
local function be32(n)
   return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
end

setup(function()
   local p = io.popen('mktemp -d /tmp/kbl_data_readers.XXXXXX')
   tmp = p:read('*l')
   p:close()
end)
teardown(function() os.execute('rm -rf ' .. tmp) end)

describe('data.idx', function()
   it('reads a plain IDX file written by hand, big-endian, as uint8', function()
      local p = write('plain.idx', '\0\0\8\2' .. be32(2) .. be32(3) .. string.char(1, 2, 3, 4, 5, 255))
      local t = data.idx(p)
      assert.equals('uint8', t.dtype)
      assert.same({2, 3}, t:size())
      assert.same({{1, 2, 3}, {4, 5, 255}}, t:tolist())
   end)

   it('reads gzip-compressed and plain files alike, for every IDX type', function()
      for _, c in ipairs{{'uint8', {{0, 7}, {200, 255}}}, {'int32', {{-5, 70000}, {3, -1}}},
         {'float32', {{0.5, -2.25}, {1e3, 3}}}, {'float64', {{0.1, -1e-300}, {2, 3}}}} do
         local t = kbl.tensor(c[2], {dtype = c[1]})
         for _, gz in ipairs{false, true} do
            local p = path('rt_' .. c[1] .. (gz and '.idx.gz' or '.idx'))
            data.idx.write(p, t, {gzip = gz})
            local f = io.open(p, 'rb')
            local magic = f:read(2)
            f:close()
            assert.equals(gz, magic == '\31\139', 'gzip header presence')
            local r = data.idx(p)
            assert.equals(c[1], r.dtype)
            assert.same(c[2], r:tolist())
         end
      end
   end)

   it('reads short and signed byte files as int32', function()
      local p = write('short.idx', '\0\0\11\1' .. be32(2) .. '\255\254\1\0')
      assert.same({-2, 256}, data.idx(p):tolist())
      p = write('sbyte.idx', '\0\0\9\1' .. be32(2) .. '\255\5')
      assert.same({-1, 5}, data.idx(p):tolist())
   end)

   it('converts label files counting from 0 to labels 1..C when asked', function()
      local p = path('labels.idx.gz')
      data.idx.write(p, kbl.tensor({0, 9, 3}, {dtype = 'uint8'}))
      local y = data.idx(p, {labels = true, num_classes = 10})
      assert.equals('int64', y.dtype)
      assert.same({1, 10, 4}, y:tolist())
   end)

   it('names the file and the magic number when the magic is wrong', function()
      local p = write('bad_magic.idx', '\1\2\8\1' .. be32(1) .. 'x')
      local e = err_of(data.idx, p)
      assert.matches('bad_magic.idx', e, 1, true)
      assert.matches('wrong magic number 0x01020801', e, 1, true)
      e = err_of(data.idx, write('bad_type.idx', '\0\0\7\1' .. be32(1) .. 'x'))
      assert.matches('wrong magic number', e, 1, true)
   end)

   it('names the file and the sizes when the body is truncated, plain or gzip', function()
      local p = write('trunc.idx', '\0\0\8\2' .. be32(3) .. be32(4) .. string.rep('a', 7))
      local e = err_of(data.idx, p)
      assert.matches('trunc.idx', e, 1, true)
      assert.matches('truncated body', e, 1, true)
      assert.matches('12 bytes', e, 1, true)
      assert.matches('holds 7', e, 1, true)
      os.execute('gzip -kf ' .. p)
      e = err_of(data.idx, p .. '.gz')
      assert.matches('trunc.idx.gz', e, 1, true)
      assert.matches('truncated body', e, 1, true)
      e = err_of(data.idx, write('short_header.idx', '\0\0\8\3' .. be32(3)))
      assert.matches('truncated header', e, 1, true)
   end)

   it('refuses bytes after the data and missing files, naming the file', function()
      local e = err_of(data.idx, write('extra.idx', '\0\0\8\1' .. be32(2) .. 'abc'))
      assert.matches('extra.idx: bytes left after', e, 1, true)
      e = err_of(data.idx, path('absent.idx'))
      assert.matches('absent.idx: cannot open', e, 1, true)
   end)

   it('names the file and position of a label out of range', function()
      local p = path('bad_labels.idx')
      data.idx.write(p, kbl.tensor({0, 3, 12}, {dtype = 'uint8'}))
      local e = err_of(data.idx, p, {labels = true, num_classes = 10})
      assert.matches('bad_labels.idx: label 12 at position 3 is out of range', e, 1, true)
   end)
end)

describe('data.csv', function()
   it('reads features and a label column by name, converting labels to 1..C', function()
      local p = write('iris.csv', 'a,b,kind,c\n1,2,0,3\n4,5,2,6\r\n\n7,8,1,9\n')
      local src = data.csv{path = p, label = 'kind'}
      assert.equals(3, src.meta.num_classes)
      assert.equals(3, src:size('train'))
      local b = src:split('train'):batch(10):iter()()
      assert.equals('float32', b.x.dtype)
      assert.same({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}, b.x:tolist())
      assert.equals('int64', b.y.dtype)
      assert.same({1, 3, 2}, b.y:tolist())
   end)

   it('takes the label by position (negative from the end), another delimiter, no header', function()
      local p = write('semi.csv', '0;1.5;2\n1; 2.5 ;"3"\n')
      local src = data.csv{path = p, label = 1, header = false, delimiter = ';'}
      local b = src:split('train'):batch(2):iter()()
      assert.same({{1.5, 2}, {2.5, 3}}, b.x:tolist())
      assert.same({1, 2}, b.y:tolist())
      src = data.csv{path = p, label = -1, header = false, delimiter = ';', regression = true}
      b = src:split('train'):batch(2):iter()()
      assert.equals('float32', b.y.dtype)
      assert.same({2, 3}, b.y:tolist())
      assert.same({{0, 1.5}, {1, 2.5}}, b.x:tolist())
   end)

   it('carves a validation split from the end and reads a test file', function()
      local rows = {'x,y'}
      for i = 1, 10 do rows[#rows + 1] = i .. ',' .. (i % 2) end
      local p = write('split.csv', table.concat(rows, '\n'))
      local src = data.csv{path = p, label = 'y', validation = 3, test = p}
      assert.same({train = 7, validation = 3, test = 10}, src.meta.sizes)
      local v = src:split('validation'):batch(5):iter()()
      assert.same({{8}, {9}, {10}}, v.x:tolist())
   end)

   it('names the file and line of a row with the wrong number of fields', function()
      local p = write('ragged.csv', 'a,b,c\n1,2,0\n\n3,4\n')
      local e = err_of(data.csv, {path = p})
      assert.matches('ragged.csv:4: 2 fields, expected 3', e, 1, true)
   end)

   it('names the file, line and field of a value that is not a number', function()
      local e = err_of(data.csv, {path = write('text.csv', 'a,b\n1,0\nzz,1\n')})
      assert.matches("text.csv:3: field 1 ('zz') is not a number", e, 1, true)
   end)

   it('names the file and line of a label out of range, negative or fractional', function()
      local p = write('labels.csv', 'a,label\n1,0\n\n2,5\n')
      local e = err_of(data.csv, {path = p, label = 'label', num_classes = 3})
      assert.matches('labels.csv:4: label 5 is out of range', e, 1, true)
      e = err_of(data.csv, {path = write('neg.csv', 'a,label\n1,-1\n'), label = 'label'})
      assert.matches('neg.csv:2: label -1 is negative', e, 1, true)
      e = err_of(data.csv, {path = write('frac.csv', 'a,label\n1,0.5\n'), label = 'label'})
      assert.matches('frac.csv:2: label 0.5 is not a whole number', e, 1, true)
   end)

   it('names the columns when the label column does not exist', function()
      local e = err_of(data.csv, {path = write('cols.csv', 'a,b\n1,0\n'), label = 'species'})
      assert.matches("cols.csv has no column 'species' (columns: a, b)", e, 1, true)
   end)
end)

describe('data.npy', function()
   it('reads a .npy file into a tensor', function()
      local p = path('a.npy')
      require('kbl.io.npy').save(p, kbl.tensor({{1, 2}, {3, 4}}, {dtype = 'float64'}))
      local t = data.npy(p)
      assert.equals('float64', t.dtype)
      assert.same({{1, 2}, {3, 4}}, t:tolist())
   end)
end)

describe('data.tensors', function()
   it('makes a source of tensors and Lua tables with meta filled in', function()
      local src = data.tensors{
         train = {x = {{1, 2}, {3, 4}, {5, 6}}, y = {1, 2, 2}},
         test = {x = kbl.tensor{{7, 8}}, y = kbl.tensor({1}, {dtype = 'int64'})},
      }
      assert.equals(2, src.meta.num_classes)
      assert.same({train = 3, validation = 0, test = 1}, src.meta.sizes)
      assert.same({2}, src.meta.shapes.x)
      assert.equals('float32', src.meta.dtypes.x)
      assert.equals(3, src:size('train'))
      local b = src:split('train'):batch(3):iter()()
      assert.same({{1, 2}, {3, 4}, {5, 6}}, b.x:tolist())
      assert.same({1, 2, 2}, b.y:tolist())
   end)

   it('refuses labels below 1 or above num_classes, and unknown splits', function()
      local e = err_of(data.tensors, {train = {x = {{1}, {2}}, y = {0, 1}}})
      assert.matches('label 0 is below 1', e, 1, true)
      e = err_of(data.tensors, {train = {x = {{1}, {2}}, y = {1, 4}}, meta = {num_classes = 3}})
      assert.matches('label 4 is above num_classes = 3', e, 1, true)
      e = err_of(data.tensors, {train = {x = {{1}, {2}}, y = {1}}})
      assert.matches('x has 2 rows but y has 1', e, 1, true)
      local src = data.tensors{train = {x = {{1}}}}
      e = err_of(function() return src:split('test') end)
      assert.matches("has no split 'test' (it has: train)", e, 1, true)
   end)
end)

describe('data.generated', function()
   it('is a pure function of its arguments', function()
      local a = data.generated{kind = 'blobs', n = 40, seed = 5, classes = 4}
      local b = data.generated{kind = 'blobs', n = 40, seed = 5, classes = 4}
      local c = data.generated{kind = 'blobs', n = 40, seed = 6, classes = 4}
      local xa = a:split('train'):batch(40):iter()()
      local xb = b:split('train'):batch(40):iter()()
      local xc = c:split('train'):batch(40):iter()()
      assert.same(xa.x:tolist(), xb.x:tolist())
      assert.not_same(xa.x:tolist(), xc.x:tolist())
      assert.equals(4, a.meta.num_classes)
      assert.is_true(xa.y:min():item() >= 1 and xa.y:max():item() <= 4)
      assert.equals(10, a:size('test'))
   end)

   it('makes xor and regression data of the asked shapes', function()
      local x = data.generated{kind = 'xor', n = 30, seed = 1, test = 0}
      assert.same({train = 30, validation = 0, test = 0}, x.meta.sizes)
      local b = x:split('train'):batch(30):iter()()
      for i, row in ipairs(b.x:tolist()) do
         assert.equals(row[1] * row[2] > 0 and 2 or 1, b.y:tolist()[i])
      end
      local r = data.generated{kind = 'regression', n = 20, dim = 3, validation = 5}
      assert.equals(5, r:size('validation'))
      local rb = r:split('train'):batch(20):iter()()
      assert.same({20, 3}, rb.x:size())
      assert.equals('float32', rb.y.dtype)
      assert.is_nil(r.meta.num_classes)
      assert.has_error(function() data.generated{kind = 'spirals'} end)
   end)
end)

describe('data.fashion_mnist', function()
   local dir = '/usr/share/datasets/fashion-mnist'
   local present = io.open(dir .. '/train-labels-idx1-ubyte.gz') or io.open(dir .. '/train-labels-idx1-ubyte')
   if present then present:close() end

   it('loads with the right shapes, counts and label range', function()
      if not present then
         pending('Fashion-MNIST is absent: `apt-get install dataset-fashion-mnist` provides ' .. dir)
         return
      end
      local src = data.fashion_mnist{validation = 5000}
      local m = src.meta
      assert.equals(10, m.num_classes)
      assert.equals('Ankle boot', m.class_names[10])
      assert.same({1, 28, 28}, m.shapes.x)
      assert.same({x = 'float32', y = 'int64'}, m.dtypes)
      assert.same({train = 55000, validation = 5000, test = 10000}, m.sizes)
      assert.equals(10000, src:size('test'))
      local b = src:split('test'):batch(10000):iter()()
      assert.same({10000, 1, 28, 28}, b.x:size())
      assert.equals('float32', b.x.dtype)
      assert.is_true(b.x:min():item() >= 0 and b.x:max():item() <= 1)
      assert.equals(1, b.x:max():item())
      assert.equals(1, b.y:min():item())
      assert.equals(10, b.y:max():item())
      -- the test set has 1000 images of each class
      local counts = kbl.one_hot(b.y, 10):sum(1):tolist()
      for c = 1, 10 do assert.equals(1000, counts[c]) end
      local v = data.fashion_mnist{validation = 0}
      assert.equals(60000, v:size('train'))
   end)

   it('lists the files it looked for and the package providing them', function()
      local e = err_of(data.fashion_mnist, {dir = tmp .. '/nowhere'})
      assert.matches('nowhere/train-images-idx3-ubyte.gz', e, 1, true)
      assert.matches('nowhere/t10k-labels-idx1-ubyte', e, 1, true)
      assert.matches('apt-get install dataset-fashion-mnist', e, 1, true)
   end)

   it('reads another directory of IDX files, plain or gzip', function()
      local d = tmp .. '/fm'
      os.execute('mkdir -p ' .. d)
      local imgs = kbl.randint(0, 256, {12, 28, 28}, {dtype = 'uint8'})
      data.idx.write(d .. '/train-images-idx3-ubyte.gz', imgs)
      local labels = kbl.tensor({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1}, {dtype = 'uint8'})
      data.idx.write(d .. '/train-labels-idx1-ubyte', labels)
      data.idx.write(d .. '/t10k-images-idx3-ubyte', imgs:narrow(1, 1, 4))
      data.idx.write(d .. '/t10k-labels-idx1-ubyte.gz', kbl.tensor({0, 1, 2, 9}, {dtype = 'uint8'}))
      local src = data.fashion_mnist{dir = d, validation = 2}
      assert.same({train = 10, validation = 2, test = 4}, src.meta.sizes)
      local b = src:split('validation'):batch(2):iter()()
      assert.same({1, 2}, b.y:tolist())
      local want = imgs:narrow(1, 11, 2):to('float32') / 255
      assert.is_true((b.x:view(2, 28, 28) - want):abs():max():item() < 1e-6)
      data.idx.write(d .. '/t10k-labels-idx1-ubyte.gz', kbl.tensor({0, 1, 2, 10}, {dtype = 'uint8'}))
      local e = err_of(data.fashion_mnist, {dir = d})
      assert.matches('t10k-labels-idx1-ubyte.gz: label 10 at position 4 is out of range', e, 1, true)
   end)
end)
