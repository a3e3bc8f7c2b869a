--- kbl.ops.index: indexing ops. Indices and labels given from Lua count from 1
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
--- Index tensors from 1 to the core's 0-based ones.
-- @local
M.zero_based = zero_based

--- The first index out of range, for error messages.
-- @local
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

--- The entries at the given positions along a dim.
-- @tparam tensor t
-- @tparam number dim from 1
-- @tparam tensor idx int64 positions, from 1
-- @treturn tensor
-- @usage local rows = x:index_select(1, kbl.tensor({3, 1}, {dtype = 'int64'}))
function M.index_select(t, dim, idx)
   local p = live(t)
   local d = check_dim('index_select', dim, p.ndim)
   local r = C.kbl_index_select(p, d, live(zero_based(idx, nil, p.device)))
   return result(r, 'index_select', idx, d + 1, p.ndim > 0 and tonumber(p.shape[d]) or 0)
end

--- Gathers values along a dim: out[i][j] = t[i][idx[i][j]] for dim 2 (as torch.gather).
-- @tparam tensor t
-- @tparam number dim from 1
-- @tparam tensor idx int64 positions, from 1, t's number of dims
-- @treturn tensor idx's shape
-- @usage local picked = logp:gather(2, labels:unsqueeze(2))
function M.gather(t, dim, idx)
   local p = live(t)
   local d = check_dim('gather', dim, p.ndim)
   local r = C.kbl_gather(p, d, live(zero_based(idx, nil, p.device)))
   return result(r, 'gather', idx, d + 1, p.ndim > 0 and tonumber(p.shape[d]) or 1)
end

--- A copy of t with src's values added at the positions idx names along dim.
-- @tparam tensor t
-- @tparam number dim from 1
-- @tparam tensor idx int64 positions, from 1
-- @tparam tensor src idx's shape
-- @treturn tensor
-- @usage local counts = kbl.zeros(3):scatter_add(1, labels, kbl.ones(labels:size(1)))
function M.scatter_add(t, dim, idx, src)
   local p = live(t)
   local d = check_dim('scatter_add', dim, p.ndim)
   local r = C.kbl_scatter_add(p, d, live(zero_based(idx, nil, p.device)), live(src))
   return result(r, 'scatter_add', idx, d + 1, p.ndim > 0 and tonumber(p.shape[d]) or 1)
end

--- value where mask is non-zero, t elsewhere (mask broadcasts to t).
-- @tparam tensor t
-- @tparam tensor mask
-- @tparam number value
-- @treturn tensor
-- @usage local y = x:masked_fill(x:lt(0), 0)
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

--- Joins tensors along an existing dim; dtypes promote as in arithmetic.
-- @tparam table list tensors
-- @tparam[opt=1] number dim
-- @treturn tensor
-- @usage local ab = kbl.cat({a, b}, 2)
function M.cat(list, dim)
   local arr, n = tensor_array(list, 'cat')
   local nd = arr[0].ndim
   return wrap(C.kbl_cat(n, arr, nd > 0 and check_dim('cat', dim or 1, nd) or 0))
end

--- Joins tensors of one shape along a new dim.
-- @tparam table list tensors
-- @tparam[opt=1] number dim 1 .. ndim + 1, or negative
-- @treturn tensor
-- @usage local batch = kbl.stack{x1, x2}
function M.stack(list, dim)
   local arr, n = tensor_array(list, 'stack')
   return wrap(C.kbl_stack(n, arr, check_dim('stack', dim or 1, arr[0].ndim + 1)))
end

--- Pads (or crops, with negative amounts) the trailing dims, as torch.nn.functional.pad.
-- @tparam tensor t
-- @tparam table pads {left, right, top, bottom, ...}: pairs from the last dim backwards
-- @tparam[opt=0] number value
-- @treturn tensor
-- @usage local p = x:pad({1, 1, 1, 1})
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

--- One-hot rows of labels.
-- @tparam tensor labels int64 1..C
-- @tparam number num_classes C
-- @treturn tensor int64 [..., C]
-- @usage local oh = kbl.one_hot(y, 10)
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
--- Reverses the order along each given dim.
-- @tparam tensor t
-- @param dims a dim or a list of them
-- @treturn tensor
-- @usage local mirrored = img:flip(4)
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
