-- kbl.ops.views: views that share storage (view, reshape, transpose, permute,
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

function M.view(t, ...) local n, s = shape_arg(...); return wrap(C.kbl_view(live(t), n, s)) end
function M.reshape(t, ...) local n, s = shape_arg(...); return wrap(C.kbl_reshape(live(t), n, s)) end
function M.view_as(t, other) return M.view(t, other:size()) end

function M.transpose(t, d0, d1) return wrap(C.kbl_transpose(live(t), cdim(d0), cdim(d1))) end

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
M.dims_arg = dims_arg

function M.permute(t, ...) local n, d = dims_arg(...); return wrap(C.kbl_permute(live(t), n, d)) end

-- narrow(dim, start, length): start counts from 1 (negative from the end; the
-- position just past the end is allowed for an empty range)
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

function M.select(t, dim, index)
   local p = live(t)
   local d = cdim(dim)
   local dd = d < 0 and p.ndim + d or d
   if dd < 0 or dd >= p.ndim then
      error(string.format('kbl: select: dimension %d out of range for %d dims', dim, p.ndim), 2)
   end
   return wrap(C.kbl_select(p, d, T.cindex(index, tonumber(p.shape[dd]))))
end

function M.expand(t, ...) local n, s = shape_arg(...); return wrap(C.kbl_expand(live(t), n, s)) end
function M.expand_as(t, other) return M.expand(t, other:size()) end

function M.squeeze(t, dim)
   if dim == nil then return wrap(C.kbl_squeeze(live(t), 0, 1)) end
   return wrap(C.kbl_squeeze(live(t), cdim(dim), 0))
end

function M.unsqueeze(t, dim)
   local d = cdim(dim)
   if d < 0 then d = d + 1 + live(t).ndim end -- -1 appends a last dim, as PyTorch
   return wrap(C.kbl_unsqueeze(live(t), d))
end

-- flatten(start_dim=1, end_dim=-1)
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

-- split(t, size_or_sizes, dim=1): a list of views
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

function M.chunk(t, n, dim)
   local total = t:size(dim or 1)
   return M.split(t, math.max(1, math.ceil(total / n)), dim)
end

function M.contiguous(t) return wrap(C.kbl_contiguous(live(t))) end
function M.clone(t) return wrap(C.kbl_clone(live(t))) end
function M.detach(t) return wrap(C.kbl_detach(live(t))) end

function M.copy_(t, src)
   if type(src) == 'number' then return M.fill_(t, src) end
   check(C.kbl_copy_(live(t), live(src)))
   return t
end

function M.fill_(t, v) check(C.kbl_fill_(live(t), v)); return t end
function M.zero_(t) return M.fill_(t, 0) end

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
M.device_id = device_id

-- to(dtype) converts; to('cpu'), to('cuda') move (a copy, differentiable; the
-- tensor itself when it is there already); to(device, dtype) does both;
-- to(other) matches another tensor's device and dtype.
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
function M.cuda(t) return M.to(t, 'cuda') end
function M.cpu(t) return M.to(t, 'cpu') end
function M.float(t) return M.to(t, 'float32') end
function M.double(t) return M.to(t, 'float64') end
function M.long(t) return M.to(t, 'int64') end
function M.int(t) return M.to(t, 'int32') end
function M.byte(t) return M.to(t, 'uint8') end

for name, fn in pairs(M) do
   if name ~= 'dims_arg' and name ~= 'device_id' then register(name, fn) end
end

return M
