-- kbl.records.tensorboard: a TensorBoard event file writer for scalars.
-- Written by hand, as TensorBoard's own writer needs TensorFlow or protobuf:
-- the file is a TFRecord stream (uint64 length, masked CRC-32C of the length,
-- data, masked CRC-32C of the data, all little-endian) of Event protos encoded
-- here in protobuf wire format:
--   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
--             Summary summary = 5; }
--   Summary { repeated Value value = 1; }
--   Value   { string tag = 1; float simple_value = 2; }
-- The checksum is CRC-32C (Castagnoli), which zlib does not have, so it is
-- computed here with the usual 256-entry table.
--
--   local tb = tensorboard.open(run_dir)       -- events.out.tfevents.<time>.<host>
--   tb:add_scalars({['loss/train'] = 0.31, lr = 1e-3}, step)
--   tb:close()
local ffi = require 'ffi'
local bit = require 'bit'

local band, bxor, rshift, ror = bit.band, bit.bxor, bit.rshift, bit.ror

pcall(ffi.cdef, [[
typedef struct kbl_timespec { long tv_sec; long tv_nsec; } kbl_timespec;
int clock_gettime(int clk_id, kbl_timespec *tp);
]])
pcall(ffi.cdef, 'int gethostname(char *name, size_t len);')
pcall(ffi.cdef, 'int getpid(void);')

local M = {}

-- ---- CRC-32C --------------------------------------------------------------

local CRC_TABLE = {}
for i = 0, 255 do
   local c = i
   for _ = 1, 8 do
      if band(c, 1) ~= 0 then c = bxor(rshift(c, 1), 0x82F63B78) else c = rshift(c, 1) end
   end
   CRC_TABLE[i] = c
end

-- CRC-32C of a string, as an unsigned number.
function M.crc32c(s)
   local c = -1
   for i = 1, #s do
      c = bxor(CRC_TABLE[band(bxor(c, s:byte(i)), 0xFF)], rshift(c, 8))
   end
   return bxor(c, -1) % 2 ^ 32
end

-- The TFRecord mask: rotate right by 15 and add a constant.
function M.masked_crc(s)
   local c = M.crc32c(s)
   return (ror(c, 15) % 2 ^ 32 + 0xa282ead8) % 2 ^ 32
end

-- ---- protobuf wire format ---------------------------------------------------

local function u32_le(n)
   return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256,
      math.floor(n / 16777216) % 256)
end
local function u64_le(n)
   return u32_le(n % 2 ^ 32) .. u32_le(math.floor(n / 2 ^ 32))
end

local function varint(n)
   if n < 0 or n % 1 ~= 0 or n >= 2 ^ 53 then
      error('tensorboard: step must be a non-negative integer, got ' .. tostring(n), 3)
   end
   local out = {}
   repeat
      local b = n % 128
      n = math.floor(n / 128)
      out[#out + 1] = string.char(n > 0 and b + 128 or b)
   until n == 0
   return table.concat(out)
end

local function key(field, wire) return varint(field * 8 + wire) end
local function len_delim(field, s) return key(field, 2) .. varint(#s) .. s end

assert(ffi.abi('le'), 'tensorboard: the event writer assumes a little-endian machine')
local dbuf, fbuf = ffi.new('double[1]'), ffi.new('float[1]')
local function fixed64_double(v) dbuf[0] = v; return ffi.string(dbuf, 8) end
local function fixed32_float(v) fbuf[0] = v; return ffi.string(fbuf, 4) end

-- Event bytes: fields {wall_time, step, file_version, values = {{tag, value}}}.
function M.encode_event(e)
   local parts = {key(1, 1) .. fixed64_double(e.wall_time)}
   if e.step and e.step ~= 0 then parts[#parts + 1] = key(2, 0) .. varint(e.step) end
   if e.file_version then parts[#parts + 1] = len_delim(3, e.file_version) end
   if e.values then
      local vals = {}
      for i, v in ipairs(e.values) do
         vals[i] = len_delim(1, len_delim(1, v[1]) .. key(2, 5) .. fixed32_float(v[2]))
      end
      parts[#parts + 1] = len_delim(5, table.concat(vals))
   end
   return table.concat(parts)
end

-- One TFRecord around data.
function M.frame(data)
   local len = u64_le(#data)
   return len .. u32_le(M.masked_crc(len)) .. data .. u32_le(M.masked_crc(data))
end

-- ---- the writer -------------------------------------------------------------

local ts = ffi.new('kbl_timespec')
function M.wall_time()
   ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

function M.hostname()
   local buf = ffi.new('char[256]')
   if ffi.C.gethostname(buf, 255) ~= 0 then return 'localhost' end
   local h = ffi.string(buf)
   return h ~= '' and h or 'localhost'
end

local Writer = {}
Writer.__index = Writer

-- open(dir, {time = seconds, host = name}) -> writer; the file is
-- dir/events.out.tfevents.<time>.<host> (with .<pid> added if that exists).
function M.open(dir, opts)
   opts = opts or {}
   local t = opts.time or M.wall_time()
   local name = string.format('events.out.tfevents.%010d.%s', math.floor(t), opts.host or M.hostname())
   local path = dir .. '/' .. name
   local probe = io.open(path, 'rb')
   if probe then
      probe:close()
      path = path .. '.' .. ffi.C.getpid()
   end
   local f, err = io.open(path, 'wb')
   if not f then error('tensorboard: cannot write the event file: ' .. tostring(err), 2) end
   local self = setmetatable({f = f, path = path}, Writer)
   f:write(M.frame(M.encode_event{wall_time = t, file_version = 'brain.Event:2'}))
   f:flush()
   return self
end

-- Scalars {tag = number} at a step, in one event (tags sorted).
function Writer:add_scalars(values, step, wall_time)
   if not self.f then error('tensorboard: the writer is closed', 2) end
   local list = {}
   for tag, v in pairs(values) do
      if type(tag) ~= 'string' then error('tensorboard: tags must be strings, got ' .. tostring(tag), 2) end
      if type(v) ~= 'number' then
         error(string.format("tensorboard: scalar '%s' must be a number, got %s", tag, type(v)), 2)
      end
      list[#list + 1] = {tag, v}
   end
   if #list == 0 then return end
   table.sort(list, function(a, b) return a[1] < b[1] end)
   self.f:write(M.frame(M.encode_event{wall_time = wall_time or M.wall_time(), step = step or 0, values = list}))
   self.f:flush()
end

function Writer:add_scalar(tag, value, step, wall_time)
   self:add_scalars({[tag] = value}, step, wall_time)
end

function Writer:flush() if self.f then self.f:flush() end end

function Writer:close()
   if self.f then
      self.f:close()
      self.f = nil
   end
end

return M
