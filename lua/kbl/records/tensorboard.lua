--- kbl.records.tensorboard: the TensorBoard event file, written and read back.
-- Written by hand, as TensorBoard's own writer needs TensorFlow or protobuf:
-- the file is a TFRecord stream (uint64 length, masked CRC-32C of the length,
-- data, masked CRC-32C of the data, all little-endian) of Event protos encoded
-- here in protobuf wire format:
--   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
--             Summary summary = 5; }
--   Summary { repeated Value value = 1; }
--   Value   { string tag = 1; float simple_value = 2; HistogramProto histo = 5;
--             SummaryMetadata metadata = 9; }
--   HistogramProto  { double min = 1, max = 2, num = 3, sum = 4, sum_squares = 5;
--                     repeated double bucket_limit = 6 [packed], bucket = 7 [packed]; }
--   SummaryMetadata { PluginData plugin_data = 1; }  PluginData { string plugin_name = 1;
--                     bytes content = 2; }   (the hparams plugin's: kbl.records.tensorboard_hparams)
-- The checksum is CRC-32C (Castagnoli), which zlib does not have, so it is
-- computed here with the usual 256-entry table.
--
--   local tb = tensorboard.open(run_dir)       -- events.out.tfevents.<time>.<host>
--   tb:add_scalars({['loss/train'] = 0.31, lr = 1e-3}, step)
--   tb:add_histogram('weights/fc.weight', tensorboard.histogram(values, n), step)
--   tb:close()
--   tensorboard.open(run_dir, {append = path})  -- goes on writing an existing file
--   tensorboard.read(path) -> {{step =, tags = {...}, data = bytes}...}, torn
--   tensorboard.keep(path, function(event) return event.step <= 100 end)
local ffi = require 'ffi'
local bit = require 'bit'
local fs = require 'kbl.io.fs'
local binfile = require 'kbl.io.binfile'
local wire = require 'kbl.onnx.wire'
local read_u32_le = binfile.read_u32_le

local band, bxor, rshift, ror = bit.band, bit.bxor, bit.rshift, bit.ror

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

-- ---- protobuf wire format (kbl.onnx.wire) ----------------------------------

-- wire.varint writes negative numbers too (as int64); a step must not be one.
local function check_step(n)
   if n < 0 or n % 1 ~= 0 or n >= 2 ^ 53 then
      error('tensorboard: step must be a non-negative integer, got ' .. tostring(n), 3)
   end
   return n
end

local function packed_doubles(list)
   local b = {}
   for i, v in ipairs(list) do b[i] = wire.double(v) end
   return table.concat(b)
end

-- HistogramProto bytes of {min, max, num, sum, sum_squares, bucket_limit, bucket}.
local function encode_histo(h)
   return wire.writer():double(1, h.min):double(2, h.max):double(3, h.num):double(4, h.sum)
      :double(5, h.sum_squares):bytes(6, packed_doubles(h.bucket_limit)):bytes(7, packed_doubles(h.bucket))
      :finish()
end

-- Summary.Value bytes. v: {tag, number} (a scalar), or {tag =, value = number |
-- histo = {...} | plugin_name =, content = bytes}: a value with only plugin
-- data (how the hparams plugin's summaries are written).
local function encode_value(v)
   if v[1] then return wire.writer():bytes(1, v[1]):float(2, v[2]):finish() end
   local w = wire.writer():bytes(1, v.tag)
   if v.plugin_name then
      local plugin_data = wire.writer():bytes(1, v.plugin_name):bytes(2, v.content or '')
      w:message(9, wire.writer():message(1, plugin_data))
   end
   if v.value then w:float(2, v.value) end
   if v.histo then w:bytes(5, encode_histo(v.histo)) end
   return w:finish()
end

-- Event bytes: fields {wall_time, step, file_version, values = {value...}}
-- (see encode_value).
function M.encode_event(e)
   local w = wire.writer():double(1, e.wall_time)
   if e.step and e.step ~= 0 then w:varint(2, check_step(e.step)) end
   if e.file_version then w:bytes(3, e.file_version) end
   if e.values then
      local summary = wire.writer()
      for _, v in ipairs(e.values) do summary:bytes(1, encode_value(v)) end
      w:message(5, summary)
   end
   return w:finish()
end

-- One TFRecord around data.
function M.frame(data)
   local len = binfile.u64_le(#data)
   return len .. binfile.u32_le(M.masked_crc(len)) .. data .. binfile.u32_le(M.masked_crc(data))
end

-- ---- histograms ---------------------------------------------------------------

-- The histogram of n numbers read by get(i) (i = 0..n-1; a typed pointer or a
-- function), in `buckets` equal-width buckets between the smallest and the
-- largest (one bucket when they are equal). Non-finite values are left out
-- and counted in .nonfinite. nil when nothing is left.
function M.histogram(get, n, buckets)
   buckets = buckets or 30
   local at = type(get) == 'function' and get or function(i) return get[i] end
   local lo, hi, sum, sq, count, bad = math.huge, -math.huge, 0, 0, 0, 0
   for i = 0, n - 1 do
      local v = tonumber(at(i))
      if v == v and v ~= math.huge and v ~= -math.huge then
         if v < lo then lo = v end
         if v > hi then hi = v end
         sum, sq, count = sum + v, sq + v * v, count + 1
      else
         bad = bad + 1
      end
   end
   if count == 0 then return nil end
   local nb = hi > lo and buckets or 1
   local width = (hi - lo) / nb
   local counts, limits = {}, {}
   for b = 1, nb do counts[b], limits[b] = 0, lo + width * b end
   limits[nb] = hi
   for i = 0, n - 1 do
      local v = tonumber(at(i))
      if v == v and v ~= math.huge and v ~= -math.huge then
         -- TensorBoard's buckets hold (previous limit, limit]; the first one its min too
         local b = nb == 1 and 1 or math.max(1, math.ceil((v - lo) / width))
         if b > nb then b = nb end
         counts[b] = counts[b] + 1
      end
   end
   return {min = lo, max = hi, num = count, sum = sum, sum_squares = sq, bucket_limit = limits, bucket = counts,
      nonfinite = bad}
end

-- ---- reading back ---------------------------------------------------------------

-- Reads an Event's step and its values' tags into e. A malformed message
-- (the record's checksum was right) keeps what was read before the fault.
local function decode_event(data, e)
   for field, wt, v in wire.fields(data) do
      if field == 2 and wt == 0 then e.step = v
      elseif field == 5 and wt == 2 then
         for f2, _, value in wire.fields(v) do
            if f2 == 1 then
               for f3, w3, tag in wire.fields(value) do
                  if f3 == 1 and w3 == 2 then e.tags[#e.tags + 1] = tag end
               end
            end
         end
      end
   end
end

-- The events of an event file: {step =, tags = {tag...}, data = record bytes
-- (framed)}, in order. A record cut short or failing its checksum ends the
-- list (what a killed writer leaves); the second result says where it was cut
-- (nil when the file is whole).
function M.read(path)
   local s = fs.read(path)
   if not s then return {}, nil end
   local events, i = {}, 1
   while i <= #s do
      if i + 11 > #s then return events, i - 1 end
      local len = s:sub(i, i + 7)
      local n = binfile.read_u64_le(len, 1)
      if read_u32_le(s, i + 8) ~= M.masked_crc(len) or i + 15 + n > #s then return events, i - 1 end
      local data = s:sub(i + 12, i + 11 + n)
      if read_u32_le(s, i + 12 + n) ~= M.masked_crc(data) then return events, i - 1 end
      local e = {step = 0, tags = {}, data = s:sub(i, i + 15 + n)}
      pcall(decode_event, data, e)
      events[#events + 1] = e
      i = i + 16 + n
   end
   return events, nil
end

-- Rewrites path (atomically) with only the events for which keep(event) is
-- true (event as M.read gives it); a cut-short tail goes too. Returns how many
-- events were dropped; the file is left alone when none were and it is whole.
function M.keep(path, keep)
   local events, cut = M.read(path)
   local kept = {}
   for _, e in ipairs(events) do
      if keep(e) then kept[#kept + 1] = e.data end
   end
   local dropped = #events - #kept
   if dropped > 0 or cut then
      binfile.write_atomic(path, table.concat(kept), 'tensorboard ' .. path)
   end
   return dropped, cut
end

-- ---- the writer -------------------------------------------------------------

M.wall_time = require('kbl.clock').wall

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
-- open(dir, {append = path}) goes on writing the event file at path.
function M.open(dir, opts)
   opts = opts or {}
   if opts.append then
      local f, err = io.open(opts.append, 'ab')
      if not f then error('tensorboard: cannot append to the event file: ' .. tostring(err), 2) end
      return setmetatable({f = f, path = opts.append}, Writer)
   end
   local t = opts.time or M.wall_time()
   local name = string.format('events.out.tfevents.%010d.%s', math.floor(t), opts.host or M.hostname())
   local path = dir .. '/' .. name
   if fs.exists(path) then path = path .. '.' .. ffi.C.getpid() end
   local f, err = io.open(path, 'wb')
   if not f then error('tensorboard: cannot write the event file: ' .. tostring(err), 2) end
   local self = setmetatable({f = f, path = path}, Writer)
   f:write(M.frame(M.encode_event{wall_time = t, file_version = 'brain.Event:2'}))
   f:flush()
   return self
end

-- The event files of dir (events.out.tfevents.*), sorted by name: the order
-- in which TensorBoard reads them.
function M.files(dir)
   local out = {}
   for _, name in ipairs(fs.list_dir(dir)) do
      if name:match('^events%.out%.tfevents%.') then out[#out + 1] = dir .. '/' .. name end
   end
   return out
end

-- Writes one event of values (see encode_value) at step.
function Writer:add_values(values, step, wall_time)
   if not self.f then error('tensorboard: the writer is closed', 2) end
   if #values == 0 then return end
   self.f:write(M.frame(M.encode_event{wall_time = wall_time or M.wall_time(), step = step or 0, values = values}))
   self.f:flush()
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
   table.sort(list, function(a, b) return a[1] < b[1] end)
   self:add_values(list, step, wall_time)
end

function Writer:add_scalar(tag, value, step, wall_time)
   self:add_scalars({[tag] = value}, step, wall_time)
end

-- Histograms {tag = M.histogram(...)} at a step, in one event (tags sorted).
function Writer:add_histograms(hists, step, wall_time)
   local list = {}
   for tag, h in pairs(hists) do list[#list + 1] = {tag = tag, histo = h} end
   table.sort(list, function(a, b) return a.tag < b.tag end)
   self:add_values(list, step, wall_time)
end

function Writer:add_histogram(tag, h, step, wall_time) self:add_histograms({[tag] = h}, step, wall_time) end

function Writer:flush() if self.f then self.f:flush() end end

function Writer:close()
   if self.f then
      self.f:close()
      self.f = nil
   end
end

return M
