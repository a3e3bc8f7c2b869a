-- safetensors: kbl.save/kbl.load round trips for every dtype, files exchanged
-- with an independent python3 reader and writer (the safetensors package when
-- installed, else the format spec in struct/json), and each malformed header.
local ffi = require 'ffi'
local json = require 'dkjson'
local kbl = require 'kbl'
local H = require 'helper'
local binfile = require 'kbl.io.binfile'

local PY = '/usr/bin/python3'
local tmp = H.tmpdir()

local bytes = H.bytes

local function have_numpy()
   return H.run(PY .. ' -c "import numpy"') == 0
end

local function write_raw(path, header, data, len)
   local f = assert(io.open(path, 'wb'))
   f:write(binfile.u64_le(len or #header), header, data or '')
   f:close()
end

local function load_error(header, data, len)
   local path = tmp .. '/bad.safetensors'
   write_raw(path, header, data, len)
   local ok, err = pcall(kbl.load, path)
   assert.is_false(ok, 'expected an error for header ' .. header)
   return err
end

describe('safetensors', function()
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('round-trips every dtype bit for bit, with 0-dim and empty tensors', function()
      kbl.manual_seed(3)
      local t = {
         f32 = kbl.randn{3, 4},
         f64 = kbl.randn({2, 5}, {dtype = 'float64'}),
         i32 = kbl.tensor({-2147483648, -1, 0, 2147483647}, {dtype = 'int32'}),
         i64 = kbl.tensor({{-2 ^ 62, 3}, {2 ^ 53 - 1, 7}}, {dtype = 'int64'}),
         u8 = kbl.tensor({0, 1, 128, 255}, {dtype = 'uint8'}),
         scalar = kbl.tensor(2.5, {dtype = 'float64'}),
         empty = kbl.zeros({0, 3}),
         empty_i64 = kbl.zeros({4, 0}, {dtype = 'int64'}),
         ['with.dots/and "quotes"'] = kbl.ones{2},
      }
      local path = tmp .. '/all.safetensors'
      kbl.save(path, t, {epoch = 3, note = 'x "y"'})
      local back, meta = kbl.load(path)
      for name, v in pairs(t) do
         local b = back[name]
         assert.is_not_nil(b, name)
         assert.are.equal(v.dtype, b.dtype, name)
         assert.are.same(v:size(), b:size(), name)
         assert.are.equal(bytes(v), bytes(b), name)
      end
      local n = 0
      for _ in pairs(back) do n = n + 1 end
      assert.are.equal(9, n)
      assert.are.same({epoch = '3', note = 'x "y"'}, meta)
   end)

   it('writes a non-contiguous tensor in C order', function()
      local x = kbl.arange(6):reshape{2, 3}:t()
      local path = tmp .. '/t.safetensors'
      kbl.save(path, {x = x})
      local back = kbl.load(path)
      assert.are.same({{0, 3}, {1, 4}, {2, 5}}, back.x:tolist())
   end)

   it('lays the file out as the specification says', function()
      local path = tmp .. '/layout.safetensors'
      kbl.save(path, {b = kbl.zeros({2}, {dtype = 'uint8'}), a = kbl.zeros({3}, {dtype = 'float64'})}, {k = 'v'})
      local f = assert(io.open(path, 'rb'))
      local s = f:read('*a')
      f:close()
      local n = binfile.read_u64_le(s, 1)
      assert.are.equal(0, n % 8)   -- the data section starts 8-byte aligned
      assert.are.equal(8 + n + 24 + 2, #s)
      local h = json.decode(s:sub(9, 8 + n))
      assert.are.same({k = 'v'}, h.__metadata__)
      assert.are.same({dtype = 'F64', shape = {3}, data_offsets = {0, 24}}, h.a)
      assert.are.same({dtype = 'U8', shape = {2}, data_offsets = {24, 26}}, h.b)
   end)

   -- 'write' uses the safetensors package where it is installed (setup.sh does not
   -- install it), else the format spec; 'write-by-spec' always uses the spec.
   for _, mode in ipairs{'write', 'write-by-spec'} do
      it('loads a file written by python with the same values (' .. mode .. ')', function()
         if not have_numpy() then return pending('python3 with numpy is not installed') end
         local path = tmp .. '/py.safetensors'
         local rc, out = H.run(PY .. ' spec/fixtures/safetensors_ref.py ' .. mode .. ' ' .. path)
         assert.are.equal(0, rc, out)
         local t, meta = kbl.load(path)
         assert.are.same({source = 'python', format = 'pt'}, meta)
         local f32 = {}
         for i = 0, 11 do f32[#f32 + 1] = i / 8 - 0.5 end
         assert.are.same(f32, kbl.reshape(t.f32, {-1}):tolist())
         assert.are.same({3, 4}, t.f32:size())
         assert.are.equal('float32', t.f32.dtype)
         assert.are.equal('float64', t.f64.dtype)
         local f64 = t.f64:tolist()
         for i = 0, 5 do assert.are.equal(i * 0.1, f64[math.floor(i / 3) + 1][i % 3 + 1]) end
         assert.are.same({-2147483648, -1, 0, 2147483647}, t.i32:tolist())
         assert.are.equal('int32', t.i32.dtype)
         assert.are.same({{-2 ^ 62, 3}, {2 ^ 53 - 1, 7}}, t.i64:tolist())
         assert.are.equal('int64', t.i64.dtype)
         assert.are.same({0, 1, 128, 255}, t.u8:tolist())
         assert.are.equal('uint8', t.u8.dtype)
         assert.are.same({}, t.scalar:size())
         assert.are.equal(2.5, t.scalar:reshape{-1}[1])
         assert.are.same({0, 3}, t.empty:size())
      end)
   end

   -- The safetensors package (PyPI only, not in Debian) lives in the test venv
   -- scripts/setup.sh makes: this cross-check skips, naming it, where it is absent.
   it('loads a file that the safetensors package itself wrote', function()
      local venv_py, why = H.venv_python('safetensors')
      if not venv_py then return pending(why) end
      local path = tmp .. '/pkg.safetensors'
      local rc, out = H.run(venv_py .. ' spec/fixtures/safetensors_ref.py write ' .. path)
      assert.are.equal(0, rc, out)
      assert.matches('writer: safetensors', out)
      assert.are.same({0, 1, 128, 255}, kbl.load(path).u8:tolist())
   end)

   it('writes a file that python reads back with the same values', function()
      if not have_numpy() then return pending('python3 with numpy is not installed') end
      local path = tmp .. '/ours.safetensors'
      local t = {
         a = kbl.tensor({{1.5, -2}, {3, 0.1}}),
         d = kbl.tensor({0.1, 1e300}, {dtype = 'float64'}),
         i = kbl.tensor({-7, 2 ^ 40}, {dtype = 'int64'}),
         j = kbl.tensor({-7, 9}, {dtype = 'int32'}),
         u = kbl.tensor({255, 0}, {dtype = 'uint8'}),
         s = kbl.tensor(4),
         e = kbl.zeros{0},
      }
      kbl.save(path, t, {who = 'kbl'})
      local rc, out = H.run(PY .. ' spec/fixtures/safetensors_ref.py read ' .. path)
      assert.are.equal(0, rc, out)
      local got = json.decode(out)
      assert.are.same({who = 'kbl'}, got.__metadata__)
      local expect = {
         a = {'F32', {2, 2}, {1.5, -2, 3, tonumber(ffi.new('float', 0.1))}},
         d = {'F64', {2}, {0.1, 1e300}}, i = {'I64', {2}, {-7, 2 ^ 40}}, j = {'I32', {2}, {-7, 9}},
         u = {'U8', {2}, {255, 0}}, s = {'F32', {}, {4}}, e = {'F32', {0}, {}},
      }
      for name, e in pairs(expect) do
         assert.are.equal(e[1], got[name].dtype, name)
         assert.are.same(e[2], got[name].shape, name)
         assert.are.same(e[3], got[name].values, name)
      end
   end)

   describe('refuses a malformed file, naming the problem and the tensor', function()
      local ok_entry = '"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'
      local data8 = string.rep('\0', 8)

      it('a file shorter than the length field', function()
         local path = tmp .. '/short.safetensors'
         local f = assert(io.open(path, 'wb'))
         f:write('abc')
         f:close()
         local ok, err = pcall(kbl.load, path)
         assert.is_false(ok)
         assert.matches('too short', err)
      end)

      it('a header length beyond the file', function()
         assert.matches('header length 9999 runs past the end of the file',
            load_error('{' .. ok_entry .. '}', data8, 9999))
      end)

      it('bad JSON, naming the byte', function()
         assert.matches('bad JSON header at byte %d+: ', load_error('{"w":{"dtype":"F32",', data8))
         assert.matches('bad JSON header at byte 8: it does not start with "{"', load_error('[1, 2]   ', ''), 1, true)
         assert.matches('bad.safetensors: bad JSON header at byte 11: text after the JSON object',
            load_error('{} x    ', ''), 1, true)
      end)

      -- kbl_empty refused it, but its message did not name the file
      it('a shape no tensor can have, even with a 0 in it', function()
         local err = load_error('{"a":{"dtype":"F32","shape":[0,4503599627370496,4503599627370496],'
            .. '"data_offsets":[0,0]}}', '')
         assert.matches("bad.safetensors: tensor 'a': shape [0, 4503599627370496, 4503599627370496] F32 is too large",
            err, 1, true)
      end)

      it('an unknown dtype', function()
         assert.matches("tensor 'w': unknown dtype 'Q7'",
            load_error('{"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}', data8), nil, true)
      end)

      it('BF16 and F16, which kbl does not hold', function()
         local err = load_error('{"half":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}}', data8)
         assert.matches("tensor 'half': dtype BF16 is not supported", err, nil, true)
         err = load_error('{"h16":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}', data8)
         assert.matches("tensor 'h16': dtype F16 is not supported", err, nil, true)
      end)

      it('offsets out of range', function()
         local err = load_error('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', data8)
         assert.matches("tensor 'w': data_offsets [0, 16] out of range", err, nil, true)
      end)

      it('overlapping offsets', function()
         local err = load_error('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
            .. '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', string.rep('\0', 12))
         assert.matches("tensor 'b' [4, 12] overlaps tensor 'a' [0, 8]", err, nil, true)
      end)

      it('non-contiguous offsets (a gap)', function()
         local err = load_error('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            .. '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', string.rep('\0', 12))
         assert.matches("tensor 'b' starts at 8, leaving a gap after tensor 'a'", err, nil, true)
         err = load_error('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', data8)
         assert.matches("4 bytes after the last tensor 'a'", err, nil, true)
      end)

      it('a size that does not match the shape', function()
         local err = load_error('{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}', data8)
         assert.matches("tensor 'w': data_offsets [0, 8] hold 8 bytes, but shape [2] F64 needs 16", err, nil, true)
      end)

      it('bad shapes, offsets and metadata', function()
         assert.matches("tensor 'w': shape entry 1 is not a size",
            load_error('{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', data8), nil, true)
         assert.matches("tensor 'w': data_offsets must be two non-negative integers",
            load_error('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', data8), nil, true)
         assert.matches("__metadata__ 'n' is not a string",
            load_error('{"__metadata__":{"n":3},' .. ok_entry .. '}', data8), nil, true)
      end)

      it('a missing file, naming it', function()
         local ok, err = pcall(kbl.load, tmp .. '/nope.safetensors')
         assert.is_false(ok)
         assert.matches('nope.safetensors: cannot open', err, nil, true)
      end)
   end)

   it('refuses to save what is not a tensor', function()
      local ok, err = pcall(kbl.save, tmp .. '/x.safetensors', {w = {1, 2}})
      assert.is_false(ok)
      assert.matches("'w' is not a tensor", err, nil, true)
      ok, err = pcall(kbl.save, tmp .. '/x.safetensors', {w = kbl.ones{1}}, {bad = {}})
      assert.is_false(ok)
      assert.matches("metadata 'bad' must be a string", err, nil, true)
   end)
end)
