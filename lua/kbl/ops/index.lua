-- kbl.ops.index: indexing ops. Indices given from Lua count from 1 (negative
-- ones are not accepted here) and are shifted for the C core.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local V = require 'kbl.ops.views'
local C = lib.C
local wrap, live, register, cdim, is_tensor = T.wrap, T.live, T.register, T.cdim, T.is_tensor

local M = {}

-- An index argument (tensor or Lua list, 1-based) as a 0-based int64 tensor.
local function zero_based(idx, what)
   if type(idx) == 'table' then
      local n = #idx
      local buf = ffi.new('double[?]', math.max(n, 1))
      for i = 1, n do buf[i - 1] = idx[i] - 1 end
      return wrap(C.kbl_from_doubles(1, ffi.new('int64_t[1]', n), buf, 3))
   end
   if not is_tensor(idx) then error('kbl: ' .. (what or 'index') .. ' must be a tensor or a list', 3) end
   local p = live(idx)
   if p.dtype ~= 3 and p.dtype ~= 2 then
      error('kbl: ' .. (what or 'index') .. ' must be an int64 (or int32) tensor, got ' .. lib.dtype_names[p.dtype], 3)
   end
   return wrap(C.kbl_unary(C.KBL_AFFINE, p, 1, -1))
end
M.zero_based = zero_based

function M.index_select(t, dim, idx) return wrap(C.kbl_index_select(live(t), cdim(dim), live(zero_based(idx)))) end
function M.gather(t, dim, idx) return wrap(C.kbl_gather(live(t), cdim(dim), live(zero_based(idx)))) end
function M.scatter_add(t, dim, idx, src)
   return wrap(C.kbl_scatter_add(live(t), cdim(dim), live(zero_based(idx)), live(src)))
end
function M.masked_fill(t, mask, value) return wrap(C.kbl_masked_fill(live(t), live(mask), value)) end

local function tensor_array(list, name)
   if type(list) ~= 'table' or #list == 0 then error('kbl: ' .. name .. ' expects a non-empty list of tensors', 3) end
   local arr = ffi.new('kbl_tensor *[?]', #list)
   for i, t in ipairs(list) do
      if not is_tensor(t) then error(string.format('kbl: %s: element %d is not a tensor', name, i), 3) end
      arr[i - 1] = live(t)
   end
   return arr, #list
end

function M.cat(list, dim)
   local arr, n = tensor_array(list, 'cat')
   return wrap(C.kbl_cat(n, arr, cdim(dim or 1)))
end

function M.stack(list, dim)
   local arr, n = tensor_array(list, 'stack')
   local d = cdim(dim or 1)
   if d < 0 then d = d + 1 + live(list[1]).ndim end
   return wrap(C.kbl_stack(n, arr, d))
end

-- pad(t, {left, right, top, bottom, ...}, value=0): pairs from the last dim backwards,
-- as torch.nn.functional.pad; negative amounts crop
function M.pad(t, pads, value)
   if type(pads) ~= 'table' or #pads % 2 ~= 0 then error('kbl: pad expects a list of (before, after) pairs', 2) end
   local buf = ffi.new('int64_t[16]')
   for i = 1, #pads do buf[i - 1] = pads[i] end
   return wrap(C.kbl_pad(live(t), #pads / 2, buf, value or 0))
end

-- one_hot(labels 1..C, C) -> int64 [..., C]
function M.one_hot(labels, num_classes)
   if type(num_classes) ~= 'number' then error('kbl: one_hot needs the number of classes', 2) end
   return wrap(C.kbl_one_hot(live(zero_based(labels, 'labels')), num_classes))
end

function M.flip(t, dims)
   local n, d = V.dims_arg(type(dims) == 'number' and {dims} or dims)
   return wrap(C.kbl_flip(live(t), n, d))
end

for name, fn in pairs(M) do
   if name ~= 'zero_based' then register(name, fn) end
end

return M
