-- kbl.ops.index: indexing ops. Indices and labels given from Lua count from 1
-- (negative ones are not accepted here, as in PyTorch's index ops) and are
-- shifted for the C core; dims count from 1 and may be negative.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local R = require 'kbl.ops.reduce'
local C = lib.C
local wrap, live, register, is_tensor = T.wrap, T.live, T.register, T.is_tensor
local check_dim = R.check_dim

local M = {}

-- An index argument (tensor or Lua list, 1-based) as a 0-based int64 tensor.
local function zero_based(idx, what, device)
   if type(idx) == 'table' then
      local n = #idx
      local buf = ffi.new('double[?]', math.max(n, 1))
      for i = 1, n do buf[i - 1] = idx[i] - 1 end
      local t = wrap(C.kbl_from_doubles(1, ffi.new('int64_t[1]', n), buf, 3))
      if device and device ~= 0 then t = wrap(C.kbl_to_device(live(t), device)) end
      return t
   end
   if not is_tensor(idx) then error('kbl: ' .. (what or 'index') .. ' must be a tensor or a list', 3) end
   local p = live(idx)
   if p.dtype ~= 3 and p.dtype ~= 2 then
      error('kbl: ' .. (what or 'index') .. ' must be an int64 (or int32) tensor, got ' .. lib.dtype_names[p.dtype], 3)
   end
   return wrap(C.kbl_unary(C.KBL_AFFINE, p, 1, -1))
end
M.zero_based = zero_based

-- The first element of a 1-based index (a tensor or a list) outside [1, size],
-- other than `skip`, and its position as the caller counts ("2", or "[1, 3]");
-- nil if there is none. Run only after the core refused an index, so that its
-- message names what the caller wrote while the happy path pays nothing.
function M.first_out_of_range(idx, size, skip)
   local shape = is_tensor(idx) and idx:size() or {#idx}
   local flat = is_tensor(idx) and idx:reshape(-1):tolist() or idx
   for i, v in ipairs(flat) do
      if v ~= skip and (v < 1 or v > size or v % 1 ~= 0) then
         if #shape <= 1 then return v, tostring(i) end
         local pos, rem = {}, i - 1
         for d = #shape, 1, -1 do
            pos[d] = rem % shape[d] + 1
            rem = math.floor(rem / shape[d])
         end
         return v, '[' .. table.concat(pos, ', ') .. ']'
      end
   end
end

-- Wraps the result of an indexing call; when the core refused it for an index
-- out of range, raises a message in Lua's terms instead of the core's. (Reached
-- by tail calls, so level 2 of an error is the op's caller.)
local function result(r, op, idx, dim, size)
   if r == nil then
      local v, pos = M.first_out_of_range(idx, size)
      if v then
         error(string.format('kbl: %s: index %s at position %s is out of range for dim %d of size %d '
            .. '(indices count from 1)', op, tostring(v), pos, dim, size), 2)
      end
   end
   return wrap(r)
end

function M.index_select(t, dim, idx)
   local p = live(t)
   local d = check_dim('index_select', dim, p.ndim)
   local r = C.kbl_index_select(p, d, live(zero_based(idx, nil, p.device)))
   return result(r, 'index_select', idx, d + 1, p.ndim > 0 and tonumber(p.shape[d]) or 0)
end

function M.gather(t, dim, idx)
   local p = live(t)
   local d = check_dim('gather', dim, p.ndim)
   local r = C.kbl_gather(p, d, live(zero_based(idx, nil, p.device)))
   return result(r, 'gather', idx, d + 1, p.ndim > 0 and tonumber(p.shape[d]) or 1)
end

-- scatter_add(t, dim, idx, src): a copy of t with src[i] added at t[..idx[i]..]
function M.scatter_add(t, dim, idx, src)
   local p = live(t)
   local d = check_dim('scatter_add', dim, p.ndim)
   local r = C.kbl_scatter_add(p, d, live(zero_based(idx, nil, p.device)), live(src))
   return result(r, 'scatter_add', idx, d + 1, p.ndim > 0 and tonumber(p.shape[d]) or 1)
end

-- masked_fill(t, mask, value): value where mask is non-zero (mask broadcasts to t)
function M.masked_fill(t, mask, value)
   if type(value) ~= 'number' then error('kbl: masked_fill value must be a number', 2) end
   return wrap(C.kbl_masked_fill(live(t), live(mask), value))
end

local function tensor_array(list, name)
   if type(list) ~= 'table' or #list == 0 then error('kbl: ' .. name .. ' expects a non-empty list of tensors', 3) end
   local arr = ffi.new('kbl_tensor *[?]', #list)
   for i, t in ipairs(list) do
      if not is_tensor(t) then error(string.format('kbl: %s: element %d is not a tensor', name, i), 3) end
      arr[i - 1] = live(t)
   end
   return arr, #list
end

-- cat(list, dim=1): joins along an existing dim; dtypes promote as in arithmetic
function M.cat(list, dim)
   local arr, n = tensor_array(list, 'cat')
   local nd = arr[0].ndim
   return wrap(C.kbl_cat(n, arr, nd > 0 and check_dim('cat', dim or 1, nd) or 0))
end

-- stack(list, dim=1): joins along a new dim (1 .. ndim + 1, or negative)
function M.stack(list, dim)
   local arr, n = tensor_array(list, 'stack')
   return wrap(C.kbl_stack(n, arr, check_dim('stack', dim or 1, arr[0].ndim + 1)))
end

-- pad(t, {left, right, top, bottom, ...}, value=0): pairs from the last dim backwards,
-- as torch.nn.functional.pad; negative amounts crop
function M.pad(t, pads, value)
   if type(pads) ~= 'table' or #pads % 2 ~= 0 or #pads > 16 then
      error('kbl: pad expects a list of (before, after) pairs, at most one per dim', 2)
   end
   local buf = ffi.new('int64_t[16]')
   for i = 1, #pads do
      if type(pads[i]) ~= 'number' or pads[i] % 1 ~= 0 then error('kbl: pad amounts must be integers', 2) end
      buf[i - 1] = pads[i]
   end
   return wrap(C.kbl_pad(live(t), #pads / 2, buf, value or 0))
end

-- one_hot(labels 1..C, C) -> int64 [..., C]
function M.one_hot(labels, num_classes)
   if type(num_classes) ~= 'number' then error('kbl: one_hot needs the number of classes', 2) end
   local r = C.kbl_one_hot(live(zero_based(labels, 'labels')), num_classes)
   if r == nil and num_classes > 0 then
      local v, pos = M.first_out_of_range(labels, num_classes)
      if v then
         error(string.format('kbl: one_hot: label %s at position %s is out of range for %d classes '
            .. '(labels count from 1 to %d)', tostring(v), pos, num_classes, num_classes), 2)
      end
   end
   return wrap(r)
end

local flip_buf = ffi.new('int[8]')
-- flip(t, dim or {dims}): reverses the order along each dim
function M.flip(t, dims)
   local p = live(t)
   if type(dims) == 'number' then dims = {dims} end
   if type(dims) ~= 'table' or #dims > 8 then error('kbl: flip expects a dim or a list of dims', 2) end
   for i = 1, #dims do flip_buf[i - 1] = check_dim('flip', dims[i], p.ndim) end
   return wrap(C.kbl_flip(p, #dims, flip_buf))
end

for name, fn in pairs(M) do
   if name ~= 'zero_based' and name ~= 'first_out_of_range' then register(name, fn) end
end

return M
