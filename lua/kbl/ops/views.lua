--- kbl.ops.views: views that share storage (view, reshape, transpose, permute,
-- narrow, select, expand, squeeze, unsqueeze, flatten, split, chunk), copies
-- (contiguous, clone, copy_, fill_, type conversion) and detach.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C
local wrap, live, register, cdim, shape_arg = T.wrap, T.live, T.register, T.cdim, T.shape_arg

local M = {}

local function check(rc)
   if rc ~= 0 then error(ffi.string(C.kbl_last_error()), 3) end
end

--- A view with another shape over the same storage (the tensor must be contiguous enough; else use reshape).
-- One size may be -1 (inferred).
-- @tparam tensor t
-- @param ... the sizes, or one table of them
-- @treturn tensor a view sharing t's storage
-- @usage local v = x:view(2, -1)
function M.view(t, ...) local n, s = shape_arg(...); return wrap(C.kbl_view(live(t), n, s)) end
--- Another shape: a view when the strides allow it, else a copy.
-- @tparam tensor t
-- @param ... the sizes (one may be -1), or one table of them
-- @treturn tensor
-- @usage local y = x:reshape{4, 3}
function M.reshape(t, ...) local n, s = shape_arg(...); return wrap(C.kbl_reshape(live(t), n, s)) end
--- A view with other's shape.
-- @tparam tensor t
-- @tparam tensor other
-- @treturn tensor
-- @usage local v = x:view_as(y)
function M.view_as(t, other) return M.view(t, other:size()) end

--- Swaps two dims (a view).
-- @tparam tensor t
-- @tparam number d0 a dim, from 1 (negative from the end)
-- @tparam number d1 a dim
-- @treturn tensor
-- @usage local y = x:transpose(1, 2)
function M.transpose(t, d0, d1) return wrap(C.kbl_transpose(live(t), cdim(d0), cdim(d1))) end

--- The transpose of a matrix (a view); a 0- or 1-dim tensor as it is.
-- @tparam tensor x at most 2 dims
-- @treturn tensor
-- @usage local wt = w:t()
function M.t(x)
   local p = live(x)
   if p.ndim > 2 then error('kbl: t() expects a tensor of at most 2 dims; use transpose', 2) end
   if p.ndim < 2 then return wrap(C.kbl_alias(p)) end
   return wrap(C.kbl_transpose(p, 0, 1))
end

local dims_buf = ffi.new('int[8]')
-- dims as a table or varargs, 1-based -> int[8]
local function dims_arg(a, ...)
   local d = type(a) == 'table' and a or {a, ...}
   if #d > 8 then error('kbl: at most 8 dims', 3) end
   for i = 1, #d do dims_buf[i - 1] = cdim(d[i]) end
   return #d, dims_buf
end
--- Dims as a table or varargs, 1-based, to C's int[8] (for the op modules).
-- @local
M.dims_arg = dims_arg

--- Reorders the dims (a view).
-- @tparam tensor t
-- @param ... the new order of dims, from 1, or one table of them
-- @treturn tensor
-- @usage local nhwc = x:permute(1, 3, 4, 2)
function M.permute(t, ...) local n, d = dims_arg(...); return wrap(C.kbl_permute(live(t), n, d)) end

--- A view of length positions along a dim from start.
-- @tparam tensor t
-- @tparam number dim from 1
-- @tparam number start from 1 (negative from the end; one past the end allowed for an empty range)
-- @tparam number length
-- @treturn tensor
-- @usage local first_two = x:narrow(1, 1, 2)
function M.narrow(t, dim, start, length)
   local p = live(t)
   local d = cdim(dim)
   local dd = d < 0 and p.ndim + d or d
   if dd < 0 or dd >= p.ndim then
      error(string.format('kbl: narrow: dimension %d out of range for %d dims', dim, p.ndim), 2)
   end
   local size = tonumber(p.shape[dd])
   if type(start) ~= 'number' or start % 1 ~= 0 or start == 0 then
      error('kbl: narrow: start must be a non-zero integer (positions count from 1), got ' .. tostring(start), 2)
   end
   local s = start > 0 and start - 1 or size + start
   if s < 0 or s > size then
      error(string.format('kbl: narrow: start %d is out of range for size %d', start, size), 2)
   end
   if type(length) ~= 'number' or length < 0 or s + length > size then
      error(string.format('kbl: narrow: start %d and length %s run past the end of dim %d (size %d)',
         start, tostring(length), dim, size), 2)
   end
   return wrap(C.kbl_narrow(p, d, s, length))
end

--- The slice at one position of a dim, which disappears (a view).
-- @tparam tensor t
-- @tparam number dim from 1
-- @tparam number index from 1 (negative from the end)
-- @treturn tensor
-- @usage local row = x:select(1, 2)
function M.select(t, dim, index)
   local p = live(t)
   local d = cdim(dim)
   local dd = d < 0 and p.ndim + d or d
   if dd < 0 or dd >= p.ndim then
      error(string.format('kbl: select: dimension %d out of range for %d dims', dim, p.ndim), 2)
   end
   return wrap(C.kbl_select(p, d, T.cindex(index, tonumber(p.shape[dd]))))
end

--- A broadcast view: dims of size 1 repeat to the given sizes (-1 keeps a size).
-- @tparam tensor t
-- @param ... the sizes, or one table of them
-- @treturn tensor
-- @usage local b = kbl.ones(1, 3):expand(4, 3)
function M.expand(t, ...) local n, s = shape_arg(...); return wrap(C.kbl_expand(live(t), n, s)) end
--- expand to other's shape.
-- @tparam tensor t
-- @tparam tensor other
-- @treturn tensor
-- @usage local b = bias:expand_as(x)
function M.expand_as(t, other) return M.expand(t, other:size()) end

--- Removes dims of size 1: all of them, or the one given.
-- @tparam tensor t
-- @tparam[opt] number dim from 1
-- @treturn tensor
-- @usage local v = kbl.zeros(1, 3, 1):squeeze()
function M.squeeze(t, dim)
   if dim == nil then return wrap(C.kbl_squeeze(live(t), 0, 1)) end
   return wrap(C.kbl_squeeze(live(t), cdim(dim), 0))
end

--- Inserts a dim of size 1 at position dim (-1 appends one).
-- @tparam tensor t
-- @tparam number dim from 1
-- @treturn tensor
-- @usage local batch = image:unsqueeze(1)
function M.unsqueeze(t, dim)
   local d = cdim(dim)
   if d < 0 then d = d + 1 + live(t).ndim end -- -1 appends a last dim, as PyTorch
   return wrap(C.kbl_unsqueeze(live(t), d))
end

--- Merges the dims from start_dim to end_dim into one.
-- @tparam tensor t
-- @tparam[opt=1] number s start_dim
-- @tparam[opt=-1] number e end_dim
-- @treturn tensor
-- @usage local flat = x:flatten(2)
function M.flatten(t, s, e)
   local p = live(t)
   local nd = p.ndim
   if nd == 0 then return M.reshape(t, {1}) end
   s = cdim(s or 1); e = cdim(e or -1)
   if s < 0 then s = s + nd end
   if e < 0 then e = e + nd end
   local shape, n = {}, 1
   for i = 0, nd - 1 do
      local size = tonumber(p.shape[i])
      if i < s or i > e then shape[#shape + 1] = size
      else
         n = n * size
         if i == e then shape[#shape + 1] = n end
      end
   end
   return M.reshape(t, shape)
end

--- Splits along a dim into pieces of a size (the last may be shorter) or of the given sizes.
-- @tparam tensor t
-- @param sizes a number, or a list of sizes summing to the dim's size
-- @tparam[opt=1] number dim
-- @treturn table a list of views
-- @usage local parts = x:split(2)
function M.split(t, sizes, dim)
   dim = dim or 1
   local total = t:size(dim)
   local out, start = {}, 1
   if type(sizes) == 'number' then
      if sizes <= 0 then error('kbl: split size must be positive', 2) end
      while start <= total do
         local len = math.min(sizes, total - start + 1)
         out[#out + 1] = M.narrow(t, dim, start, len)
         start = start + len
      end
   else
      local sum = 0
      for _, s in ipairs(sizes) do sum = sum + s end
      if sum ~= total then
         error(string.format('kbl: split sizes add up to %d but dim %d has size %d', sum, dim, total), 2)
      end
      for _, s in ipairs(sizes) do
         out[#out + 1] = M.narrow(t, dim, start, s)
         start = start + s
      end
   end
   return out
end

--- Splits along a dim into n pieces of (nearly) equal size.
-- @tparam tensor t
-- @tparam number n
-- @tparam[opt=1] number dim
-- @treturn table a list of views
-- @usage local a, b = unpack(x:chunk(2, 2))
function M.chunk(t, n, dim)
   local total = t:size(dim or 1)
   return M.split(t, math.max(1, math.ceil(total / n)), dim)
end

--- t itself if its elements lie in order in memory, else a contiguous copy.
-- @tparam tensor t
-- @treturn tensor
-- @usage local c = x:t():contiguous()
function M.contiguous(t) return wrap(C.kbl_contiguous(live(t))) end
--- A copy with storage of its own (differentiable).
-- @tparam tensor t
-- @treturn tensor
-- @usage local y = x:clone()
function M.clone(t) return wrap(C.kbl_clone(live(t))) end
--- The same values, cut from the graph: no gradient flows through it.
-- @tparam tensor t
-- @treturn tensor sharing t's storage
-- @usage local target = y:detach()
function M.detach(t) return wrap(C.kbl_detach(live(t))) end

--- Copies src's values into t in place (src broadcasts; dtypes convert).
-- @tparam tensor t
-- @tparam tensor src
-- @treturn tensor t
-- @usage w:copy_(saved)
function M.copy_(t, src)
   if type(src) == 'number' then return M.fill_(t, src) end
   check(C.kbl_copy_(live(t), live(src)))
   return t
end

--- Sets every element of t to v, in place.
-- @tparam tensor t
-- @tparam number v
-- @treturn tensor t
-- @usage x:fill_(1)
function M.fill_(t, v) check(C.kbl_fill_(live(t), v)); return t end
--- Sets every element of t to zero, in place.
-- @tparam tensor t
-- @treturn tensor t
-- @usage grad:zero_()
function M.zero_(t) return M.fill_(t, 0) end

--- Marks a leaf tensor as requiring a gradient (or not), in place.
-- @tparam tensor t
-- @tparam[opt=true] boolean flag
-- @treturn tensor t
-- @usage local w = kbl.randn(3, 3):requires_grad_()
function M.requires_grad_(t, flag)
   if flag == nil then flag = true end
   check(C.kbl_set_requires_grad(live(t), flag and 1 or 0))
   return t
end

-- Device names: 'cpu', 'cuda' or 'cuda:0' (the one CUDA device kbl drives).
local devices = {cpu = 0, cuda = 1, ['cuda:0'] = 1}
local function device_id(what)
   local id = devices[what]
   if id == nil and type(what) == 'string' and what:match('^cuda:%d+$') then
      error(string.format("kbl: device '%s': kbl drives one CUDA device, cuda:0 ('cuda')", what), 3)
   end
   return id
end
--- Device names to the core's ids: 'cpu', 'cuda', 'cuda:0'.
-- @local
M.device_id = device_id

--- Converts or moves: to(dtype) converts; to('cpu') or to('cuda') moves (a differentiable
-- copy, or t itself when it is there already); to(device, dtype) does both; to(other)
-- matches another tensor's device and dtype.
-- @tparam tensor t
-- @param what a dtype name, a device name or a tensor
-- @tparam[opt] string dtype with a device
-- @treturn tensor
-- @usage local y = x:to('float64')
function M.to(t, what, dtype)
   if T.is_tensor(what) then
      t = M.to(t, what.device)
      what = what.dtype
   end
   local dev = device_id(what)
   if dev then
      local p = live(t)
      if p.device ~= dev then t = wrap(C.kbl_to_device(p, dev)) end
      if dtype == nil then return t end
      what = dtype
   end
   local id = lib.dtype_id(what)
   if live(t).dtype == id then return t end
   return wrap(C.kbl_to_dtype(live(t), id))
end
--- t on the CUDA device (to('cuda')).
-- @tparam tensor t
-- @treturn tensor
-- @usage if kbl.cuda.is_available() then x = x:cuda() end
function M.cuda(t) return M.to(t, 'cuda') end
--- t on the CPU (to('cpu')).
-- @tparam tensor t
-- @treturn tensor
-- @usage local host = y:cpu()
function M.cpu(t) return M.to(t, 'cpu') end
--- t as float32.
-- @tparam tensor t
-- @treturn tensor
-- @usage local f = labels:float()
function M.float(t) return M.to(t, 'float32') end
--- t as float64.
-- @tparam tensor t
-- @treturn tensor
-- @usage local d = x:double()
function M.double(t) return M.to(t, 'float64') end
--- t as int64.
-- @tparam tensor t
-- @treturn tensor
-- @usage local idx = x:long()
function M.long(t) return M.to(t, 'int64') end
--- t as int32.
-- @tparam tensor t
-- @treturn tensor
-- @usage local i = x:int()
function M.int(t) return M.to(t, 'int32') end
--- t as uint8.
-- @tparam tensor t
-- @treturn tensor
-- @usage local b = x:byte()
function M.byte(t) return M.to(t, 'uint8') end

for name, fn in pairs(M) do
   if name ~= 'dims_arg' and name ~= 'device_id' then register(name, fn) end
end

return M
