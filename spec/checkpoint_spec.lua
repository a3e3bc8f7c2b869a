-- checkpoint: the checkpoint file round-trips tensors bit for bit and metadata
-- exactly; truncation, flipped bytes, a bad magic number and a newer version
-- are each detected and named; latest_valid falls back past bad files and
-- says why; a write killed by SIGKILL leaves the previous checkpoint intact.
local H = require 'helper'
local ffi = require 'ffi'
local kbl = require 'kbl'
local checkpoint = require 'kbl.records.checkpoint'

local build = os.getenv('KBL_BUILD_DIR') or 'build'
local tmp = H.tmpdir()

local bytes = H.bytes

local slurp = H.read

local spit = H.write

local exists = H.exists

-- A small valid checkpoint at path; returns its bytes.
local function small(path, step)
   kbl.manual_seed(step or 1)
   checkpoint.save(path, {meta = {step = step or 1}, tensors = {w = kbl.randn{64, 64}}})
   return slurp(path)
end

local function load_error(path)
   local ok, err = pcall(checkpoint.load, path)
   assert.is_false(ok, 'expected ' .. path .. ' to be refused')
   local okv, why = checkpoint.verify(path)
   assert.is_false(okv)
   assert.are.equal(err, why)
   return err
end

describe('checkpoint', function()
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('round-trips tensors bit for bit and metadata exactly', function()
      kbl.manual_seed(11)
      local tensors = {
         ['model.w'] = kbl.randn{5, 7},
         ['model.b'] = kbl.randn({3}, {dtype = 'float64'}),
         ['optim.step'] = kbl.tensor({1, -2 ^ 40}, {dtype = 'int64'}),
         i32 = kbl.tensor({-2147483648, 2147483647}, {dtype = 'int32'}),
         u8 = kbl.tensor({{0, 255}}, {dtype = 'uint8'}),
         scalar = kbl.tensor(0.1, {dtype = 'float64'}),
         empty = kbl.zeros{0, 3},
         view = kbl.randn{4, 6}:t(),
      }
      local seed, offset = ffi.new('uint64_t[1]'), ffi.new('uint64_t[1]')
      kbl.lib.C.kbl_generator_get_state(seed, offset)
      local meta = {
         step = 1234, epoch = 3, lr = 0.1 + 0.2, best = math.huge, worst = -math.huge, nz = -0.0,
         tiny = 5e-324, big = 2 ^ 60 + 2 ^ 8, nan = 0 / 0,
         generator = {seed = seed[0], offset = offset[0], max = 0xffffffffffffffffULL, neg = -3LL},
         pipeline = {seed = 1, epoch = 2, position = 17},
         callbacks = {{name = 'early_stopping', wait = 2, best = 0.25}, {name = 'plateau', cooldown = 0}},
         config = {model = {type = 'blocks.Dense', units = 10}, ['optimizer.lr'] = 3e-4},
         sparse = {[1] = 'a', [5] = 'e'}, mixed = {1, 2, key = 'v'}, numkeys = {[0.5] = 'half'},
         empty = {}, yes = true, no = false, text = 'line\nnext "quoted" \0 \255',
      }
      local path = tmp .. '/' .. checkpoint.file_name(1234)
      assert.matches('step%-000000001234%.ckpt$', path)
      checkpoint.save(path, {meta = meta, tensors = tensors})
      assert.is_false(exists(path .. '.tmp.' .. require('kbl.records.status').pid()))
      local m, t = checkpoint.load(path)
      for name, v in pairs(tensors) do
         assert.is_not_nil(t[name], name)
         assert.are.equal(v.dtype, t[name].dtype, name)
         assert.are.same(v:size(), t[name]:size(), name)
         assert.are.equal(bytes(v), bytes(t[name]), name)
      end
      assert.is_true(m.nan ~= m.nan)
      assert.are.equal(-math.huge, 1 / m.nz)
      for _, k in ipairs{'generator'} do
         for kk, v in pairs(meta[k]) do
            assert.is_true(v == m[k][kk], k .. '.' .. kk)
            assert.are.equal(tostring(v), tostring(m[k][kk]))
         end
      end
      m.nan, meta.nan, m.generator, meta.generator = nil, nil, nil, nil
      assert.are.same(meta, m)
      assert.are.equal(0.1 + 0.2, m.lr)
      assert.are.equal(2 ^ 60 + 2 ^ 8, m.big)
   end)

   it('writes the same bytes for the same content', function()
      local a, b = tmp .. '/same1.ckpt', tmp .. '/same2.ckpt'
      local meta = {z = 1, a = {y = 2, b = 3}, m = 'x'}
      kbl.manual_seed(2)
      local w = kbl.randn{10}
      checkpoint.save(a, {meta = meta, tensors = {w = w, v = w * 2}})
      checkpoint.save(b, {meta = meta, tensors = {v = w * 2, w = w}})
      assert.are.equal(slurp(a), slurp(b))
   end)

   it('refuses metadata that is not plain data', function()
      local path = tmp .. '/bad-meta.ckpt'
      local ok, err = pcall(checkpoint.save, path, {meta = {cb = {fn = print}}})
      assert.is_false(ok)
      assert.matches('meta.cb.fn is a function; checkpoints hold plain data only', err, nil, true)
      ok, err = pcall(checkpoint.save, path, {meta = {w = kbl.ones{2}}})
      assert.is_false(ok)
      assert.matches('meta.w is a tensor', err, nil, true)
      local cyc = {}
      cyc.self = cyc
      ok, err = pcall(checkpoint.save, path, {meta = cyc})
      assert.is_false(ok)
      assert.matches('cycle', err)
      assert.is_false(exists(path))
   end)

   describe('detects a damaged file and names it and the problem', function()
      local path = tmp .. '/victim.ckpt'

      it('truncated', function()
         local s = small(path)
         spit(path, s:sub(1, #s - 10))
         local err = load_error(path)
         assert.matches(path .. ': truncated: the file is ' .. (#s - 10) .. ' bytes, its header says ' .. #s,
            err, nil, true)
         spit(path, s:sub(1, 20))
         assert.matches(path .. ': truncated: 20 bytes, shorter than the 40-byte header', load_error(path), nil, true)
         spit(path, '')
         assert.matches('truncated: 0 bytes', load_error(path), nil, true)
      end)

      it('a flipped byte in the data', function()
         local s = small(path)
         local i = 40 + math.floor((#s - 40) / 2)
         spit(path, s:sub(1, i - 1) .. string.char((s:byte(i) + 1) % 256) .. s:sub(i + 1))
         assert.matches(path .. ': corrupt data (payload checksum mismatch)', load_error(path), nil, true)
      end)

      it('a flipped byte in the header', function()
         local s = small(path)
         spit(path, s:sub(1, 24) .. string.char((s:byte(25) + 1) % 256) .. s:sub(26))
         assert.matches(path .. ': corrupt header (header checksum mismatch)', load_error(path), nil, true)
      end)

      it('a bad magic number', function()
         local s = small(path)
         spit(path, 'PK\3\4' .. s:sub(5))
         assert.matches(path .. ': bad magic number: not a kbl checkpoint', load_error(path), nil, true)
      end)

      it('a newer format version', function()
         local s = small(path)
         spit(path, s:sub(1, 8) .. string.char(kbl.lib.C.kbl_checkpoint_format_version() + 1) .. s:sub(10))
         assert.matches(path .. ': format version 2 is newer than this kbl reads (1)', load_error(path), nil, true)
      end)

      it('trailing bytes and a missing file', function()
         local s = small(path)
         spit(path, s .. 'xx')
         assert.matches('trailing bytes', load_error(path))
         assert.matches('nope.ckpt: cannot open', load_error(tmp .. '/nope.ckpt'), nil, true)
      end)
   end)

   it('latest_valid falls back past invalid checkpoints and says why', function()
      local dir = tmp .. '/run'
      os.execute('mkdir -p ' .. dir)
      local p = {}
      for step = 1, 4 do
         p[step] = dir .. '/' .. checkpoint.file_name(step * 100)
         small(p[step], step)
      end
      small(dir .. '/best.ckpt', 9)
      local s3 = slurp(p[3])
      spit(p[3], s3:sub(1, 40) .. string.char((s3:byte(41) + 1) % 256) .. s3:sub(42))
      local s4 = slurp(p[4])
      spit(p[4], s4:sub(1, 100))
      local names = {}
      for _, e in ipairs(checkpoint.list(dir)) do names[#names + 1] = e.step end
      assert.are.same({400, 300, 200, 100}, names)
      local path, skipped, step = checkpoint.latest_valid(dir)
      assert.are.equal(p[2], path)
      assert.are.equal(200, step)
      assert.are.equal(2, #skipped)
      assert.are.equal(p[4], skipped[1].path)
      assert.matches('truncated', skipped[1].reason)
      assert.are.equal(p[3], skipped[2].path)
      assert.matches('checksum mismatch', skipped[2].reason)
      local meta = checkpoint.load(path)
      assert.are.equal(2, meta.step)
      -- nothing valid
      local none = tmp .. '/none'
      os.execute('mkdir -p ' .. none)
      spit(none .. '/' .. checkpoint.file_name(5), 'garbage')
      local np, nskipped = checkpoint.latest_valid(none)
      assert.is_nil(np)
      assert.are.equal(1, #nskipped)
      assert.is_nil((checkpoint.latest_valid(tmp .. '/no-such-dir')))
   end)

   it('prune keeps the newest K step checkpoints', function()
      local dir = tmp .. '/prune'
      os.execute('mkdir -p ' .. dir)
      for step = 1, 5 do small(dir .. '/' .. checkpoint.file_name(step), step) end
      local removed = checkpoint.prune(dir, 2)
      assert.are.equal(3, #removed)
      local left = {}
      for _, e in ipairs(checkpoint.list(dir)) do left[#left + 1] = e.step end
      assert.are.same({5, 4}, left)
   end)

   it('reports a directory it cannot write, naming the path', function()
      local ok, err = pcall(checkpoint.save, tmp .. '/no/such/dir/x.ckpt', {meta = {}})
      assert.is_false(ok)
      assert.matches('no/such/dir/x.ckpt', err, nil, true)
   end)

   it('leaves the previous checkpoint intact when the writer is killed mid-write', function()
      local dir = tmp .. '/kill'
      os.execute('mkdir -p ' .. dir)
      local path = dir .. '/' .. checkpoint.file_name(1)
      kbl.manual_seed(7)
      local expect = bytes(kbl.randn{4 * 1024 * 1024})
      local lib = os.getenv('PWD') .. '/' .. build .. '/libkbl.so'
      local mid_write, last_iter = 0, 0
      for attempt = 1, 4 do
         local ready = dir .. '/ready' .. attempt
         os.execute(string.format('KBL_LIB=%s KBL_BUILD_DIR=%s bin/kbl spec/fixtures/checkpoint_writer.lua %s %s '
            .. '>%s/log 2>&1 & echo $! > %s/pid', lib, build, path, ready, dir, dir))
         local pid = tonumber(slurp(dir .. '/pid'))
         for _ = 1, 1200 do   -- up to a minute: a sanitizer build writes slowly
            if exists(ready) then break end
            os.execute('sleep 0.05')
         end
         assert.is_true(exists(ready), 'the writer did not start: ' .. slurp(dir .. '/log'))
         os.execute(string.format('sleep 0.%d', 1 + attempt * 2))
         os.execute('kill -9 ' .. pid)
         os.execute('sleep 0.1')
         local tmpfile = path .. '.tmp.' .. pid
         if exists(tmpfile) then
            mid_write = mid_write + 1
            os.remove(tmpfile)
         end
         local meta, t = checkpoint.load(path)
         assert.is_true(meta.iter >= 1)
         last_iter = meta.iter
         assert.are.equal(expect, bytes(t.w))
         os.remove(ready)
      end
      print(string.format('  (SIGKILL landed mid-write in %d of 4 attempts)', mid_write))
      assert.is_true(mid_write >= 1, 'no kill landed during a write (last iter ' .. last_iter .. ')')
   end)
end)
