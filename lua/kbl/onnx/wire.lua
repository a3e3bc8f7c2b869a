--- kbl.onnx.wire: the protobuf wire format, the part ONNX files use: varints
-- (wire type 0), 32-bit fixed (5, a float attribute) and length-delimited
-- fields (2: strings, bytes, nested messages). Written by hand rather than
-- through protoc or protobuf-c: the build has no protobuf compiler, and kbl
-- writes and reads back a subset of ONNX of about thirty fields, which this
-- file and kbl/onnx/format.lua cover in about 350 lines. The TensorBoard event
-- writer and reader (kbl.records.tensorboard, tensorboard_hparams) use it too,
-- with 64-bit fixed doubles (wire type 1).
--
--   local w = wire.writer(); w:varint(1, 8); w:bytes(2, 'name'); w:message(7, sub)
--   local s = w:finish()                                 -- a Lua string
--   for field, wt, value in wire.fields(s) do ... end    -- value: number or string
local bit = require 'bit'
local ffi = require 'ffi'

local M = {}

-- A varint's bytes. Non-negative integers up to 2^53 arrive as Lua numbers;
-- negative ones (ONNX's -1 in a Reshape shape, axis = -1) as two's complement
-- 64-bit, ten bytes, as protobuf writes int64.
local function varint(n)
   local out = {}
   if n < 0 then
      local u = ffi.cast('uint64_t', ffi.cast('int64_t', n))
      for _ = 1, 10 do
         local b = tonumber(u % 128)
         u = u / 128
         out[#out + 1] = string.char(u ~= 0 and b + 128 or b)
         if u == 0 then break end
      end
      return table.concat(out)
   end
   if n % 1 ~= 0 or n > 2 ^ 53 then error('onnx: cannot write ' .. tostring(n) .. ' as an integer', 3) end
   repeat
      local b = n % 128
      n = (n - b) / 128
      out[#out + 1] = string.char(n > 0 and b + 128 or b)
   until n == 0
   return table.concat(out)
end
M.varint = varint

local function tag(field, wt) return varint(field * 8 + wt) end
M.tag = tag

local dbuf, fbuf = ffi.new('double[1]'), ffi.new('float[1]')
assert(ffi.abi('le'), 'kbl.onnx.wire: fixed-width fields assume a little-endian machine')

-- The 8 bytes of a double and the 4 of a float, little-endian (wire types 1 and 5).
function M.double(x) dbuf[0] = x; return ffi.string(dbuf, 8) end
function M.float(x) fbuf[0] = x; return ffi.string(fbuf, 4) end

-- A whole length-delimited field as a string: tag, length, bytes.
function M.len_delim(field, s) return tag(field, 2) .. varint(#s) .. s end

local Writer = {}
Writer.__index = Writer

function M.writer() return setmetatable({parts = {}}, Writer) end

function Writer:varint(field, n)
   local p = self.parts
   p[#p + 1] = tag(field, 0)
   p[#p + 1] = varint(n)
   return self
end

function Writer:bytes(field, s)
   local p = self.parts
   p[#p + 1] = tag(field, 2)
   p[#p + 1] = varint(#s)
   p[#p + 1] = s
   return self
end

-- A nested message (a writer, or an already finished string).
function Writer:message(field, w)
   return self:bytes(field, type(w) == 'string' and w or w:finish())
end

function Writer:float(field, x)
   local p = self.parts
   p[#p + 1] = tag(field, 5)
   p[#p + 1] = M.float(x)
   return self
end

function Writer:double(field, x)
   local p = self.parts
   p[#p + 1] = tag(field, 1)
   p[#p + 1] = M.double(x)
   return self
end

function Writer:finish() return table.concat(self.parts) end

-- ---- reading ------------------------------------------------------------------

local function fail(what, pos) error(string.format('onnx: malformed protobuf (%s at byte %d)', what, pos), 0) end

-- Reads a varint at pos: value (a Lua number; int64 read as signed), next pos.
local function read_varint(s, pos)
   local u, shift = 0ULL, 0
   while true do
      local b = s:byte(pos)
      if not b then fail('truncated varint', pos) end
      u = u + bit.lshift(ffi.cast('uint64_t', bit.band(b, 127)), shift)
      pos = pos + 1
      if b < 128 then break end
      shift = shift + 7
      if shift > 63 then fail('varint longer than 10 bytes', pos) end
   end
   return tonumber(ffi.cast('int64_t', u)), pos
end
M.read_varint = read_varint

-- Iterates over the fields of a message: field number, wire type, value
-- (a number for varints and fixed32 floats, a string for length-delimited fields).
function M.fields(s)
   local pos, n = 1, #s
   return function()
      if pos > n then return nil end
      local key
      key, pos = read_varint(s, pos)
      local field, wt = math.floor(key / 8), key % 8
      if field < 1 then fail('field number 0', pos) end
      local value
      if wt == 0 then
         value, pos = read_varint(s, pos)
      elseif wt == 2 then
         local len
         len, pos = read_varint(s, pos)
         if len < 0 or pos + len - 1 > n then fail('length past the end', pos) end
         value = s:sub(pos, pos + len - 1)
         pos = pos + len
      elseif wt == 5 then
         if pos + 3 > n then fail('truncated fixed32', pos) end
         local f = ffi.new('float[1]')
         ffi.copy(f, s:sub(pos, pos + 3), 4)
         value, pos = tonumber(f[0]), pos + 4
      elseif wt == 1 then
         if pos + 7 > n then fail('truncated fixed64', pos) end
         local d = ffi.new('double[1]')
         ffi.copy(d, s:sub(pos, pos + 7), 8)
         value, pos = tonumber(d[0]), pos + 8
      else
         fail('unsupported wire type ' .. wt, pos)
      end
      return field, wt, value
   end
end

-- A packed repeated varint field's values.
function M.unpack_varints(s)
   local out, pos = {}, 1
   while pos <= #s do
      out[#out + 1], pos = read_varint(s, pos)
   end
   return out
end

return M
