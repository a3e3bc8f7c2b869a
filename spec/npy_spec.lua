-- npy: kbl.io.npy round trips for every dtype, files written by numpy (C and
-- Fortran order, version 2.0 headers) and files of ours read by numpy.
local json = require 'dkjson'
local kbl = require 'kbl'
local H = require 'helper'
local npy = require 'kbl.io.npy'
local mutate = require 'mutate'

local PY = '/usr/bin/python3'
local tmp = H.tmpdir()

local bytes = H.bytes

local function have_numpy() return H.run(PY .. ' -c "import numpy"') == 0 end

describe('npy', function()
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('round-trips every dtype bit for bit, with 0-dim, 1-dim and empty tensors', function()
      kbl.manual_seed(5)
      local cases = {
         kbl.randn{3, 4}, kbl.randn({2, 1, 3}, {dtype = 'float64'}),
         kbl.tensor({-2147483648, 5, 2147483647}, {dtype = 'int32'}),
         kbl.tensor({{-2 ^ 62, 1}}, {dtype = 'int64'}), kbl.tensor({0, 200, 255}, {dtype = 'uint8'}),
         kbl.tensor(3.5), kbl.zeros{0, 2}, kbl.randn{7}, kbl.randn{2, 3}:t(),
      }
      for i, t in ipairs(cases) do
         local path = tmp .. '/r' .. i .. '.npy'
         npy.save(path, t)
         local b = npy.load(path)
         assert.are.equal(t.dtype, b.dtype, 'case ' .. i)
         assert.are.same(t:size(), b:size(), 'case ' .. i)
         assert.are.equal(bytes(t), bytes(b), 'case ' .. i)
         local f = assert(io.open(path, 'rb'))
         local head = f:read(10)
         f:close()
         assert.are.equal('\147NUMPY\1\0', head:sub(1, 8))
         local hlen = head:byte(9) + 256 * head:byte(10)
         assert.are.equal(0, (10 + hlen) % 64, 'header padded to 64 bytes')
      end
   end)

   it('loads what numpy writes: C and Fortran order, version 2.0, bool, 0-dim, empty', function()
      if not have_numpy() then return pending('python3 with numpy is not installed') end
      local rc, out = H.run(PY .. ' spec/fixtures/npy_ref.py write ' .. tmp)
      assert.are.equal(0, rc, out)
      local c = npy.load(tmp .. '/c.npy')
      assert.are.equal('float64', c.dtype)
      assert.are.same({3, 4}, c:size())
      assert.are.same({{-1, -0.75, -0.5, -0.25}, {0, 0.25, 0.5, 0.75}, {1, 1.25, 1.5, 1.75}}, c:tolist())
      local f = npy.load(tmp .. '/f.npy')
      assert.are.equal('float32', f.dtype)
      assert.are.same(c:tolist(), f:tolist())
      assert.is_true(f:is_contiguous())
      local f3 = npy.load(tmp .. '/f3.npy')
      assert.are.same({2, 3, 4}, f3:size())
      assert.are.same(kbl.arange(24, {dtype = 'int64'}):reshape{2, 3, 4}:tolist(), f3:tolist())
      assert.are.same({1, -2, 3}, npy.load(tmp .. '/v2.npy'):tolist())
      assert.are.equal('int32', npy.load(tmp .. '/v2.npy').dtype)
      assert.are.same({1, 0, 1}, npy.load(tmp .. '/bool.npy'):tolist())
      assert.are.same({{0, 255}, {7, 128}}, npy.load(tmp .. '/u8.npy'):tolist())
      local s = npy.load(tmp .. '/scalar.npy')
      assert.are.equal(0, s:dim())
      assert.are.equal(-1.25, s:item())
      assert.are.same({0, 5}, npy.load(tmp .. '/empty.npy'):size())
   end)

   it('refuses big-endian data and unsupported dtypes with a clear message', function()
      if not have_numpy() then return pending('python3 with numpy is not installed') end
      local rc, out = H.run(PY .. ' spec/fixtures/npy_ref.py write ' .. tmp)
      assert.are.equal(0, rc, out)
      local ok, err = pcall(npy.load, tmp .. '/big.npy')
      assert.is_false(ok)
      assert.matches("big-endian data ('>f4') is not supported", err, nil, true)
      ok, err = pcall(npy.load, tmp .. '/i8.npy')
      assert.is_false(ok)
      assert.matches("dtype '|i1' is not supported", err, nil, true)
   end)

   it('writes files numpy reads with the same values', function()
      if not have_numpy() then return pending('python3 with numpy is not installed') end
      local cases = {
         {kbl.tensor({{1.5, -2, 0.25}}), '<f4', {1, 3}, {1.5, -2, 0.25}},
         {kbl.tensor({0.1, 1e300}, {dtype = 'float64'}), '<f8', {2}, {0.1, 1e300}},
         {kbl.tensor({-7, 2 ^ 40}, {dtype = 'int64'}), '<i8', {2}, {-7, 2 ^ 40}},
         {kbl.tensor({-7, 9}, {dtype = 'int32'}), '<i4', {2}, {-7, 9}},
         {kbl.tensor({255, 0}, {dtype = 'uint8'}), '|u1', {2}, {255, 0}},
         {kbl.tensor(4), '<f4', {}, {4}},
         {kbl.zeros{2, 0}, '<f4', {2, 0}, {}},
         {kbl.arange(6):reshape{2, 3}:t(), '<i8', {3, 2}, {0, 3, 1, 4, 2, 5}},
      }
      for i, c in ipairs(cases) do
         local path = tmp .. '/w' .. i .. '.npy'
         npy.save(path, c[1])
         local rc, out = H.run(PY .. ' spec/fixtures/npy_ref.py read ' .. path)
         assert.are.equal(0, rc, out)
         local got = json.decode(out)
         assert.are.equal(c[2], got.dtype, 'case ' .. i)
         assert.are.same(c[3], got.shape, 'case ' .. i)
         assert.are.same(c[4], got.values, 'case ' .. i)
      end
   end)

   it('refuses a malformed header, naming the file, the byte and the key', function()
      local path = tmp .. '/h.npy'
      local function err_of(dict, data)
         local f = assert(io.open(path, 'wb'))
         f:write(mutate.npy_file(1, dict, data or string.rep('\0', 24)))
         f:close()
         local ok, err = pcall(npy.load, path)
         assert.is_false(ok, dict)
         return err
      end
      local function head(shape) return "{'descr': '<f4', 'fortran_order': False, 'shape': " .. shape .. ', }' end
      -- byte 10 is the header's first; 'shape': ( is at byte 60
      assert.matches("h.npy: bad header at byte 63 ('shape'): expected ',' or ')' after a size", err_of(head('(1 2)')),
         1, true)
      assert.matches("h.npy: bad header at byte 61 ('shape'): expected a size or ')'", err_of(head('(,)')), 1, true)
      assert.matches("bad header at byte 60 ('shape'): (3) is a number, not a tuple (write (3,))", err_of(head('(3)')),
         1, true)
      assert.matches("bad header at byte 63 ('shape'): expected a size or ')'", err_of(head('(1,,2)')), 1, true)
      -- a size no tensor can have once gave "empty: negative size", naming nothing
      assert.matches("h.npy: bad header at byte 60 ('shape'): (0, 99999999999999999999) is too large",
         err_of(head('(0, 99999999999999999999)')), 1, true)
      assert.matches("bad header at byte 66 ('x'): unknown key", err_of("{'descr': '<f4', 'fortran_order': False, "
         .. "'shape': (2,), 'x': 1}"), 1, true)
      assert.matches("bad header at byte 51 ('descr'): the key is given twice", err_of("{'descr': '<f4', "
         .. "'fortran_order': False, 'descr': '<f4', 'shape': (2,)}"), 1, true)
      assert.matches("('fortran_order'): expected a string, True, False or a tuple",
         err_of("{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}"), 1, true)
      assert.matches("no 'shape' key", err_of("{'descr': '<f4', 'fortran_order': False}"), 1, true)
      assert.matches("bad header at byte 66: text after the closing '}'",
         err_of("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk"), 1, true)
      assert.matches("bad header at byte 20 ('descr'): structured dtypes are not supported",
         err_of("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}"), 1, true)
      -- what numpy writes, trailing commas and Python 2's 3L included, still loads
      local f = assert(io.open(path, 'wb'))
      f:write(mutate.npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,3,), }", string.rep('\0', 24)))
      f:close()
      assert.are.same({2, 3}, npy.load(path):size())
      f = assert(io.open(path, 'wb'))
      f:write(mutate.npy_file(1, '{"descr":"<f4","fortran_order":False,"shape":(3L,)}', string.rep('\0', 12)))
      f:close()
      assert.are.same({3}, npy.load(path):size())
   end)

   it('reports a file that is not .npy or is truncated, naming it', function()
      local path = tmp .. '/bad.npy'
      local f = assert(io.open(path, 'wb'))
      f:write('hello world, not numpy')
      f:close()
      local ok, err = pcall(npy.load, path)
      assert.is_false(ok)
      assert.matches('bad.npy: not a .npy file', err, nil, true)
      npy.save(path, kbl.zeros{100})
      f = assert(io.open(path, 'rb'))
      local s = f:read('*a')
      f:close()
      f = assert(io.open(path, 'wb'))
      f:write(s:sub(1, #s - 10))
      f:close()
      ok, err = pcall(npy.load, path)
      assert.is_false(ok)
      assert.matches('truncated: shape (100) needs 400 bytes of data from byte 128, the file has 390', err, nil, true)
   end)
end)
