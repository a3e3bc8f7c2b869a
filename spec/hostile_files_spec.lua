-- spec/hostile_files_spec.lua: files whose headers lie (issue 12). Sizes that
-- pass 2^63 are an error naming the op and the shape, never a wrap; every
-- reader (IDX plain and gzip, checkpoint, data cache) checks the bytes a header
-- promises against the bytes the file has before it allocates, and names the
-- file and, for a header, the byte offset and the field; a resume checks every
-- tensor against what it restores into. The inputs the fuzzers (fuzz/) found
-- are kept in spec/fixtures/fuzz_regressions and must give clean errors.
local ffi = require 'ffi'
local kbl = require 'kbl'
local data = require 'kbl.data'
local checkpoint = require 'kbl.records.checkpoint'
local H = require 'helper'
local C = kbl.lib.C

local dir = H.tmpdir()
local function path(name) return dir .. '/' .. name end
local function write(name, bytes) return H.write(path(name), bytes) end
local function err_of(fn, ...)
   local ok, e = pcall(fn, ...)
   assert.is_false(ok, 'expected an error')
   return tostring(e)
end
local function has(s, ...)
   for _, part in ipairs{...} do assert.matches(part, s, 1, true) end
end

local function be32(n)
   return string.char(math.floor(n / 2 ^ 24) % 256, math.floor(n / 2 ^ 16) % 256, math.floor(n / 2 ^ 8) % 256, n % 256)
end
local function le(n, bytes)
   local t = {}
   for i = 1, bytes do
      t[i] = string.char(n % 256)
      n = math.floor(n / 256)
   end
   return table.concat(t)
end
local function gzip(p)
   os.execute('gzip -kf ' .. p)
   return p .. '.gz'
end

-- ---- checkpoints with valid checksums around whatever payload we like --------

pcall(ffi.cdef, [[
size_t ZSTD_compress(void *dst, size_t cap, const void *src, size_t n, int level);
size_t ZSTD_compressBound(size_t n);
unsigned ZSTD_isError(size_t code);
unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned len);
unsigned long long ZSTD_getFrameContentSize(const void *src, size_t n);
size_t ZSTD_decompress(void *dst, size_t cap, const void *src, size_t n);
]])
local zstd = ffi.load('zstd')
local zlib = ffi.load('z')

local function crc(s) return tonumber(zlib.crc32(0, s, #s)) end

-- The file around a payload: header with both CRCs, one zstd frame.
local function checkpoint_file(name, payload, raw_override)
   local cap = zstd.ZSTD_compressBound(#payload)
   local buf = ffi.new('char[?]', cap)
   local n = zstd.ZSTD_compress(buf, cap, payload, #payload, 1)
   assert(zstd.ZSTD_isError(n) == 0)
   local frame = ffi.string(buf, n)
   local h = 'KBLCKPT\0' .. le(1, 4) .. le(40, 4) .. le(#frame, 8) .. le(raw_override or #payload, 8)
      .. le(crc(frame), 4)
   return write(name, h .. le(crc(h), 4) .. frame)
end

-- A payload: metadata text and tensors {name =, dtype = code, shape = {...}, bytes =}.
local function payload(meta, tensors)
   local parts = {le(#meta, 8), meta, le(#tensors, 4)}
   for _, t in ipairs(tensors) do
      parts[#parts + 1] = le(#t.name, 4) .. t.name .. le(t.dtype, 4) .. le(#t.shape, 4)
      for _, s in ipairs(t.shape) do parts[#parts + 1] = le(s, 8) end
      parts[#parts + 1] = t.bytes or ''
   end
   return table.concat(parts)
end

local META = '{"format":"x"}'

describe('sizes that pass 2^63', function()
   it('are an error naming the op and the shape in every constructor, never a wrap', function()
      has(err_of(kbl.zeros, {2 ^ 31, 2 ^ 31}), 'empty: shape [2147483648, 2147483648] of float32 is too large')
      has(err_of(kbl.empty, {2 ^ 30, 2 ^ 31}, {dtype = 'float64'}), '[1073741824, 2147483648] of float64')
      has(err_of(kbl.zeros, {65536, 65536, 65536, 65536}, {dtype = 'uint8'}),
         '[65536, 65536, 65536, 65536] is too large: its element count passes 2^63')
      -- a zero size does not hide the others: strides would still wrap
      has(err_of(kbl.zeros, {0, 2 ^ 40, 2 ^ 40}), 'too large')
      -- a view (no new memory) is checked too
      local one = kbl.ones{1, 1}
      has(err_of(one.expand, one, 2 ^ 40, 2 ^ 40), 'too large')
      has(err_of(kbl.reshape, kbl.ones{4}, {2 ^ 32, 2 ^ 32, 4}), 'too large')
      -- sizes that fit are untouched, empty ones included
      assert.equals(0, kbl.zeros({0, 5}):numel())
      assert.same({3, 0}, kbl.zeros({3, 0}):size())
   end)
end)

describe('IDX headers that lie', function()
   it('a 12-byte file that says float64 [2^30, 2^31] or float32 [2^31, 2^31], plain or gzip', function()
      local p = write('f64.idx', '\0\0\14\2' .. be32(2 ^ 30) .. be32(2 ^ 31))
      has(err_of(data.idx, p), 'f64.idx', 'the dim sizes at bytes 4-11', '[1073741824, 2147483648] of float64',
         'too large')
      p = write('f32.idx', '\0\0\13\2' .. be32(2 ^ 31) .. be32(2 ^ 31))
      has(err_of(data.idx, p), 'f32.idx', 'bytes 4-11', '[2147483648, 2147483648]', 'too large')
      has(err_of(data.idx, gzip(p)), 'f32.idx.gz', 'bytes 4-11', '[2147483648, 2147483648]', 'too large')
   end)

   it('uint8 dims 65536 x 4 is an error, not a tensor with numel 0', function()
      local p = write('u8.idx', '\0\0\8\4' .. be32(65536):rep(4))
      has(err_of(data.idx, p), 'u8.idx', 'bytes 4-19', '[65536, 65536, 65536, 65536]', 'element count passes 2^63')
   end)

   it('promises more data than the file holds: refused before allocating, naming the field', function()
      local p = write('lie.idx', '\0\0\8\2' .. be32(1000) .. be32(1000) .. 'abc')
      local e = err_of(data.idx, p)
      has(e, 'lie.idx: truncated body', 'the dim sizes at bytes 4-11', '[1000, 1000] uint8', '1000000 bytes',
         'holds 3')
      -- gzip: deflate expands at most 1032 times, so 2^40 bytes cannot come from a tiny file
      p = write('huge.idx', '\0\0\8\2' .. be32(2 ^ 20) .. be32(2 ^ 20))
      e = err_of(data.idx, gzip(p))
      has(e, 'huge.idx.gz: truncated body', 'bytes 4-11', '1099511627776 bytes', 'holds at most')
      assert.is_nil(e:find('out of memory', 1, true))
   end)

   it('names the byte and field of a bad magic number', function()
      has(err_of(data.idx, write('m0.idx', '\0\1\8\1' .. be32(1) .. 'x')), 'm0.idx', 'bytes 0-1 must be zero')
      has(err_of(data.idx, write('m2.idx', '\0\0\7\1' .. be32(1) .. 'x')), 'm2.idx', 'byte 2 (the type code) is 0x07')
      has(err_of(data.idx, write('m3.idx', '\0\0\8\0')), 'm3.idx', 'byte 3 (the number of dims) is 0')
      has(err_of(data.idx, write('m3b.idx', '\0\0\8\3' .. be32(2))), 'm3b.idx: truncated header',
         'byte 3 says 3 dims', 'bytes 4-15', 'ends at byte 8')
   end)

   it('are never written: a dim past 2^32 is an error, not a truncated size', function()
      local t = kbl.ones({1}, {dtype = 'uint8'}):expand(2 ^ 32)
      has(err_of(data.idx.write, path('wide.idx'), t), 'wide.idx: dim 1 of [4294967296] uint8 does not fit')
   end)

   it('names the file of a corrupt gzip stream', function()
      local t = kbl.arange(0, 4000):to('uint8')
      local p = path('corrupt.idx.gz')
      data.idx.write(p, t, {gzip = true})
      local s = H.read(p)
      local i = #s - 6 -- inside the CRC-32 of the gzip trailer
      H.write(p, s:sub(1, i - 1) .. string.char((s:byte(i) + 1) % 256) .. s:sub(i + 1))
      has(err_of(data.idx, p), 'corrupt.idx.gz: corrupt gzip data')
   end)
end)

describe('checkpoints that lie', function()
   it('a tensor that claims float32 [2^31, 2^31] behind valid checksums', function()
      local p = checkpoint_file('big.ckpt', payload(META, {{name = 'w', dtype = 0, shape = {2 ^ 31, 2 ^ 31}}}))
      has(err_of(checkpoint.load, p), 'big.ckpt', "tensor 1 ('w')", '[2147483648, 2147483648] of float32',
         'too large', 'at byte 39 of')
      -- and one that is only bigger than the data
      p = checkpoint_file('short.ckpt', payload(META, {{name = 'w', dtype = 0, shape = {10}, bytes = 'abcd'}}))
      has(err_of(checkpoint.load, p), 'short.ckpt', "tensor 1 ('w'): [10] float32 needs 40 bytes, 4 are left")
   end)

   it('refuses two tensors of one name', function()
      local w = {name = 'w', dtype = 4, shape = {2}, bytes = 'ab'}
      local p = checkpoint_file('dup.ckpt', payload(META, {w, {name = 'v', dtype = 4, shape = {1}, bytes = 'c'}, w}))
      has(err_of(checkpoint.load, p), 'dup.ckpt', "tensor name 'w' appears twice (tensors 1 and 3 of 3)")
   end)

   it('refuses junk after the metadata JSON', function()
      local p = checkpoint_file('junk.ckpt', payload(META .. ' xx', {}))
      has(err_of(checkpoint.load, p), 'junk.ckpt', 'junk after the JSON value at byte 15 of the metadata')
   end)

   it('names the file when the metadata nests too deep, instead of a stack overflow', function()
      local p = checkpoint_file('deep.ckpt', payload(('['):rep(100000) .. (']'):rep(100000), {}))
      local e = err_of(checkpoint.load, p)
      has(e, 'deep.ckpt', 'nests deeper than 200 levels', 'at byte 200 of the metadata')
      -- brackets inside strings do not count
      p = checkpoint_file('strings.ckpt', payload('{"a":"' .. ('['):rep(1000) .. '\\""}', {}))
      assert.equals('[', (checkpoint.load(p).a):sub(1, 1))
      -- and a checkpoint cannot be written that could not be read back
      local deep = {}
      for _ = 1, 300 do deep = {deep} end
      has(err_of(checkpoint.save, path('no.ckpt'), {meta = {x = deep}}), 'nests deeper than 200 levels')
   end)

   it('a decompressed size in the header that the frame does not hold', function()
      local p = checkpoint_file('raw.ckpt', payload(META, {}), 2 ^ 40)
      has(err_of(checkpoint.load, p), 'raw.ckpt', 'byte 24')
   end)
end)

describe('data cache files that lie', function()
   local function cache_file(name, entry)
      return write(name, 'KBLCACHE' .. le(1, 4) .. le(1, 4) .. 'k' .. le(1, 4) .. entry)
   end
   local function read_cache(p)
      local out = ffi.new('kbl_tensor *[4]')
      assert.equals(0, C.kbl_data_cache_read(p, 'k', 4, out))
      return ffi.string(C.kbl_last_error())
   end

   it('an entry of float32 [2^31, 2^31], and a frame larger than the file', function()
      local p = cache_file('big.cache', le(0, 4) .. le(2, 4) .. le(2 ^ 31, 8) .. le(2 ^ 31, 8) .. le(0, 8) .. le(10, 8))
      has(read_cache(p), 'big.cache: damaged at byte 29', 'entry 1', '[2147483648, 2147483648] of float32',
         'too large')
      p = cache_file('frame.cache', le(4, 4) .. le(1, 4) .. le(1000, 8) .. le(1000, 8) .. le(2 ^ 40, 8) .. 'x')
      has(read_cache(p), 'frame.cache: damaged at byte 45', 'a zstd frame of 1099511627776 bytes',
         'the file holds 1 more')
      p = cache_file('size.cache', le(4, 4) .. le(1, 4) .. le(1000, 8) .. le(999, 8) .. le(1, 8) .. 'x')
      has(read_cache(p), 'size.cache: damaged at byte 37', '[1000] uint8 is 1000 bytes, the size field says 999')
   end)
end)

describe('resume', function()
   it('checks optimizer state against the parameters it belongs to', function()
      local optim = require 'kbl.optim'
      local o = optim.Adam{lr = 0.1}
      local w = kbl.zeros({2, 3}, {requires_grad = true})
      w.grad = kbl.ones{2, 3}
      o:step({w})
      local sd = o:state_dict()
      sd.state[1].exp_avg_sq = kbl.zeros{3}
      has(err_of(o.load_state_dict, o, sd, {w}, {'fc.weight'}),
         "optim.Adam: the saved exp_avg_sq of parameter 'fc.weight' (1 of 1) is [3] float32, "
         .. 'the parameter is [2, 3] float32')
      sd = o:state_dict()
      sd.state[4] = sd.state[1]
      has(err_of(o.load_state_dict, o, sd, {w}), 'the saved state is for parameter 4, but there are 1 parameters')
      o:load_state_dict(o:state_dict(), {w}) -- a state that fits loads
   end)

   it('names the checkpoint when the pipeline state it holds is bad', function()
      local blocks, optim = require 'kbl.blocks', require 'kbl.optim'
      local function trainer()
         return require('kbl.fit').Trainer{model = blocks.Dense{units = 3}, loss = require('kbl.losses').CrossEntropy{},
            data = data.generated{kind = 'blobs', n = 64, dim = 4, classes = 3, seed = 2},
            optimizer = optim.SGD{lr = 0.1}, epochs = 1, batch_size = 32, seed = 1, quiet = true, prefetch = 0}
      end
      local t = trainer()
      t:fit()
      local s = t:state()
      s.pipeline = {epoch = -1, position = 0}
      local t2 = trainer()
      t2:set_state(s, 'x/step-2.ckpt')
      has(err_of(t2.fit, t2), 'resume from x/step-2.ckpt: data: state epoch must be a non-negative integer, got -1')
   end)

   it('checks the best weights EarlyStopping kept against the model', function()
      local blocks = require 'kbl.blocks'
      local callbacks = require 'kbl.callbacks'
      local m = blocks.Dense{units = 2}
      m(kbl.zeros{1, 3})
      local es = callbacks.EarlyStopping{restore_best_weights = true}
      has(err_of(es.set_state, es, {best_weights = {weight = kbl.zeros{3, 2}, bias = kbl.zeros{2}}}, {model = m}),
         "EarlyStopping: the saved best weight 'weight' is [3, 2] float32, the model has [2, 3] float32")
      has(err_of(es.set_state, es, {best_weights = {weight = kbl.zeros{2, 3}}}, {model = m}),
         "the saved best weight 'bias' is missing")
      es:set_state({best_weights = m:state_dict()}, {model = m})
   end)

   it('names the parameter and both shapes when optimizer state does not fit it', function()
      local cfg = H.write(path('tiny.lua'), [[
return {
   extends = 'fit', name = 'tiny', epochs = 1, batch_size = 16,
   data = data.generated{kind = 'blobs', n = 48, validation = 16, dim = 4, classes = 3, seed = 5},
   model = blocks.Sequential{blocks.Dense{units = 5, activation = 'relu'}, blocks.Dense{3}},
   optimizer = optim.Adam{lr = 0.01},
   callbacks = {callbacks.ModelCheckpoint{every_steps = 1, keep = 5}},
}
]])
      local run = path('tiny_run')
      local rc, _, err = H.kbl('run ' .. cfg .. ' --quiet --run-dir ' .. run, dir)
      assert.equals(0, rc, err)
      local list = checkpoint.list(run .. '/checkpoints')
      assert.is_true(#list >= 2)
      -- keep the first step's checkpoint only (mid-epoch), with a wrong moment
      for i = 1, #list - 1 do os.remove(list[i].path) end
      local ck = list[#list].path
      local meta, tensors = checkpoint.load(ck)
      -- the first parameter's moment: state keyed by the parameter's name (or, before, its position)
      local name = tensors['trainer/optimizer/state/1.weight/exp_avg'] and 'trainer/optimizer/state/1.weight/exp_avg'
         or 'trainer/optimizer/state/1/exp_avg'
      assert.is_not_nil(tensors[name], 'the optimizer state is stored as ' .. name)
      tensors[name] = kbl.zeros{7, 2}
      checkpoint.save(ck, {meta = meta, tensors = tensors})
      local s = H.read(run .. '/status.json'):gsub('"finished"', '"interrupted"')
      H.write(run .. '/status.json', s)
      rc, _, err = H.kbl('run --resume ' .. run .. ' --quiet', dir)
      assert.is_not.equals(0, rc)
      has(err, 'resume from ' .. ck, "optim.Adam: the saved exp_avg of parameter '1.weight' (1 of 4)",
         'is [7, 2] float32, the parameter is [5, 4] float32')
      assert.is_nil(err:find('traceback', 1, true))
      -- the same moment claiming float32 [2^31, 2^31] behind valid checksums:
      -- the checkpoint does not load, and resume says so instead of crashing
      local frame = H.read(ck):sub(41)
      local n = tonumber(zstd.ZSTD_getFrameContentSize(frame, #frame))
      local buf = ffi.new('char[?]', n)
      assert.equals(n, tonumber(zstd.ZSTD_decompress(buf, n, frame, #frame)))
      local raw = ffi.string(buf, n)
      local at = raw:find(le(#name, 4) .. name, 1, true) + 4 + #name + 8 -- past the name, dtype and ndim
      raw = raw:sub(1, at - 1) .. le(2 ^ 31, 8) .. le(2 ^ 31, 8) .. raw:sub(at + 16)
      os.rename(checkpoint_file('huge.ckpt', raw), ck)
      rc, _, err = H.kbl('run --resume ' .. run .. ' --quiet', dir)
      assert.is_not.equals(0, rc)
      has(err, 'skipping checkpoint ' .. ck, "('" .. name .. "')", '[2147483648, 2147483648] of float32 is too large',
         'no valid checkpoint')
   end)
end)

describe('kept crashing inputs (fuzz/regressions)', function()
   -- fuzz/regressions/<harness>/<file> holds inputs that crashed a reader, as
   -- the harness takes them (scripts/fuzz.sh replays them there too); here
   -- each becomes the file the reader sees and must give an error naming it
   local function gzipped(p)
      local out = path('regression.gz')
      os.execute("gzip -c '" .. p .. "' > '" .. out .. "'")
      return out
   end
   local function cache_error(p)
      local out = ffi.new('kbl_tensor *[16]')
      local n = C.kbl_data_cache_read(p, 'fuzz', 16, out)
      for i = 0, n - 1 do C.kbl_tensor_release(out[i]) end
      assert.equals(0, n, p .. ' loaded')
      return ffi.string(C.kbl_last_error())
   end
   local readers = {
      idx = function(p) return p, err_of(data.idx, p) end,
      idx_gz = function(p)
         local gz = gzipped(p)
         return gz, err_of(data.idx, gz)
      end,
      checkpoint = function(p)
         local bytes = H.read(p)
         local f = bytes:sub(1, 7) == 'KBLCKPT' and p or checkpoint_file('regression.ckpt', bytes)
         return f, err_of(checkpoint.load, f)
      end,
      cache = function(p) return p, cache_error(p) end,
   }

   it('gives an error naming the file for each', function()
      local ls = io.popen('ls -1 fuzz/regressions/*/* 2>/dev/null')
      local n = 0
      for file in ls:lines() do
         local kind = file:match('^fuzz/regressions/([^/]+)/')
         assert.is_not_nil(readers[kind], 'no reader for ' .. file)
         local f, e = readers[kind](file)
         has(e, f)
         assert.is_nil(e:find('out of memory', 1, true), e)
         n = n + 1
      end
      ls:close()
      assert.is_true(n >= 6, 'the kept inputs are missing')
   end)
end)

teardown(function() os.execute('rm -rf ' .. dir) end)
