--- kbl.data.idx: IDX files (MNIST, Fashion-MNIST), gzip-compressed or plain,
-- parsed in C (core/data_io.c).
--
--   data.idx(path)                          -- the values as stored: ubyte -> uint8,
--                                           -- sbyte/short/int -> int32, float, double
--   data.idx(path, {labels = true, num_classes = 10})
--                                           -- a label file: the file counts from 0,
--                                           -- the tensor holds int64 labels 1..C
--   data.idx.write(path, tensor, {gzip = true})
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local B = require 'kbl.data.base'
local C = lib.C

local M = {}

function M.read(path, o)
   if type(path) == 'table' then path, o = path.path or path[1], path end
   if type(path) ~= 'string' then error('data.idx: expects a file path', 2) end
   o = o or {}
   local t = B.check(C.kbl_data_idx_read(path))
   if o.labels then
      t = B.check(C.kbl_data_labels(T.live(t), o.num_classes or 0, path, 0))
   end
   return t
end

function M.write(path, t, o)
   o = o or {}
   local gz = o.gzip
   if gz == nil then gz = path:match('%.gz$') ~= nil end
   if C.kbl_data_idx_write(path, T.live(t), gz and 1 or 0) ~= 0 then
      error(ffi.string(C.kbl_last_error()), 2)
   end
end

return setmetatable(M, {__call = function(_, ...) return M.read(...) end})
