-- tensorboard: the event file writer. CRC-32C against its standard check value,
-- and a file of scalars decoded by an independent python3 reader (TFRecord
-- framing with both checksums verified, protobuf fields by the wire format; also
-- the tensorboard package's own loader when it is installed).
local ffi = require 'ffi'
local json = require 'dkjson'
local H = require 'helper'
local tensorboard = require 'kbl.records.tensorboard'

local PY = '/usr/bin/python3'
local tmp = H.tmpdir()

local function f32(v) return tonumber(ffi.new('float', v)) end

local slurp = H.read

describe('tensorboard', function()
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('computes CRC-32C (Castagnoli), not zlib CRC-32', function()
      assert.are.equal(0xE3069283, tensorboard.crc32c('123456789'))
      assert.are.equal(0, tensorboard.crc32c(''))
      assert.are.equal(0x8A9136AA, tensorboard.crc32c(string.rep('\0', 32)))
      assert.are.equal(0x62A8AB43, tensorboard.crc32c(string.rep('\255', 32)))
      -- the TFRecord mask: rotate right 15, add 0xa282ead8
      local c = tensorboard.crc32c('123456789')
      local expect = ((math.floor(c / 2 ^ 15) + (c % 2 ^ 15) * 2 ^ 17) + 0xa282ead8) % 2 ^ 32
      assert.are.equal(expect, tensorboard.masked_crc('123456789'))
   end)

   it('names the file events.out.tfevents.<time>.<host>', function()
      local dir = tmp .. '/name'
      os.execute('mkdir -p ' .. dir)
      local w = tensorboard.open(dir, {time = 1700000000.5, host = 'box'})
      w:close()
      assert.are.equal(dir .. '/events.out.tfevents.1700000000.box', w.path)
      local w2 = tensorboard.open(dir, {time = 1700000000.5, host = 'box'})
      w2:close()
      assert.are_not.equal(w.path, w2.path)
      assert.matches('tfevents', w2.path)
   end)

   it('writes scalars that an independent reader decodes with their steps', function()
      if H.run(PY .. ' -c "import struct, json"') ~= 0 then return pending('python3 is not installed') end
      local dir = tmp .. '/run'
      os.execute('mkdir -p ' .. dir)
      local w = tensorboard.open(dir, {time = 1700000000})
      local logged = {}
      for epoch = 1, 5 do
         local vals = {['loss/train'] = 1 / epoch, ['loss/validation'] = 1.2 / epoch,
            ['accuracy/train'] = 0.5 + epoch / 20, lr = 1e-3 * 0.5 ^ epoch}
         w:add_scalars(vals, epoch * 100, 1700000000 + epoch)
         logged[#logged + 1] = {step = epoch * 100, vals = vals}
      end
      w:add_scalar('big_step', -2.5, 2 ^ 40)
      w:close()
      local rc, out = H.run(PY .. ' spec/fixtures/tfevents_read.py ' .. w.path)
      assert.are.equal(0, rc, out)
      local got = json.decode(out)
      local ev = got.events
      assert.are.equal(7, #ev)
      assert.are.equal('brain.Event:2', ev[1].file_version)
      assert.are.equal(1700000000, ev[1].wall_time)
      for i, l in ipairs(logged) do
         local e = ev[i + 1]
         assert.are.equal(l.step, e.step)
         assert.are.equal(1700000000 + i, e.wall_time)
         local seen = 0
         for _, v in ipairs(e.values) do
            assert.are.equal(f32(l.vals[v.tag]), v.value, v.tag)
            seen = seen + 1
         end
         assert.are.equal(4, seen)
      end
      assert.are.equal(2 ^ 40, ev[7].step)
      assert.are.same({{tag = 'big_step', value = -2.5}}, ev[7].values)
   end)

   -- The tensorboard package (PyPI only, not in Debian) is not installed by
   -- scripts/setup.sh: this cross-check skips, naming it, where it is absent.
   it('writes events that the tensorboard package itself reads', function()
      if not H.python_has('tensorboard') then
         return pending('skipped: the Python module tensorboard is not installed (PyPI only, not in setup.sh)')
      end
      local dir = tmp .. '/tb'
      os.execute('mkdir -p ' .. dir)
      local w = tensorboard.open(dir, {time = 1700000000})
      w:add_scalar('loss', 0.25, 3)
      w:close()
      local rc, out = H.run(PY .. ' spec/fixtures/tfevents_read.py ' .. w.path)
      assert.are.equal(0, rc, out)
      assert.is_true(json.decode(out).tensorboard_checked)
   end)

   it('is caught by the reader when a byte is flipped (the checksums are checked)', function()
      if H.run(PY .. ' -c "import struct, json"') ~= 0 then return pending('python3 is not installed') end
      local dir = tmp .. '/flip'
      os.execute('mkdir -p ' .. dir)
      local w = tensorboard.open(dir, {time = 1700000000})
      w:add_scalar('loss', 0.25, 1)
      w:close()
      local s = slurp(w.path)
      local f = assert(io.open(w.path, 'wb'))
      f:write(s:sub(1, #s - 8) .. string.char((s:byte(#s - 7) + 1) % 256) .. s:sub(#s - 6))
      f:close()
      local rc, out = H.run(PY .. ' spec/fixtures/tfevents_read.py ' .. w.path)
      assert.are.equal(1, rc)
      assert.matches('data CRC mismatch', out)
   end)

   it('refuses bad scalars and a closed writer', function()
      local w = tensorboard.open(tmp, {time = 1})
      assert.has_error(function() w:add_scalar('x', 'nope', 1) end,
         "tensorboard: scalar 'x' must be a number, got string")
      assert.has_error(function() w:add_scalar('x', 1, -1) end)
      w:close()
      assert.has_error(function() w:add_scalar('x', 1, 1) end, 'tensorboard: the writer is closed')
   end)
end)
