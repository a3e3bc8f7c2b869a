--- kbl.tensor: the Tensor type seen from Lua. A tensor is a kbl_handle cdata
-- with a metatype: methods, properties (shape, dtype, grad, requires_grad),
-- 1-based indexing, arithmetic operators and a finalizer. Op modules add their
-- functions to `methods` through M.register.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local memory = require 'kbl.memory'
local C = lib.C
local handle_ct = lib.handle_ct
local dtype_names = lib.dtype_names

local M = {}
local methods = {}
local getters = {}
M.methods = methods

local track = memory.track

-- Wraps a new reference returned by libkbl (raising its error when NULL).
local function wrap(p)
   if p == nil then error(ffi.string(C.kbl_last_error()), 3) end
   local h = handle_ct(p, 0)
   track(h)
   return h
end
M.wrap = wrap

-- Wraps another reference to an existing tensor (not owned by a scope).
local function wrap_retained(p)
   if p == nil then return nil end
   return handle_ct(C.kbl_tensor_retain(p), 0)
end
M.wrap_retained = wrap_retained

--- Whether x is a kbl tensor. Also kbl.is_tensor.
-- @param x any value
-- @treturn boolean
-- @usage print(kbl.is_tensor(kbl.zeros(1)))  --> true
local function is_tensor(x) return type(x) == 'cdata' and ffi.istype(handle_ct, x) end
M.is_tensor = is_tensor

-- Lua counts dims from 1, C from 0; negative dims count from the end in both.
local function cdim(d, what)
   if type(d) ~= 'number' or d == 0 or d % 1 ~= 0 then
      error(string.format('kbl: %s must be a non-zero integer (dims count from 1), got %s',
         what or 'dimension', tostring(d)), 3)
   end
   return d > 0 and d - 1 or d
end
M.cdim = cdim

-- 1-based position (negative from the end) to 0-based index, for size n.
local function cindex(i, n, what)
   if type(i) ~= 'number' or i % 1 ~= 0 or i == 0 then
      error(string.format('kbl: %s must be a non-zero integer (positions count from 1), got %s',
         what or 'index', tostring(i)), 3)
   end
   local j = i > 0 and i - 1 or n + i
   if j < 0 or j >= n then
      error(string.format('kbl: %s %d is out of range for size %d', what or 'index', i, n), 3)
   end
   return j
end
M.cindex = cindex

-- {2, 3} or (2, 3) -> ndim, int64_t[8]
local shape_buf = ffi.new('int64_t[8]')
local function shape_arg(a, ...)
   local t = type(a) == 'table' and a or {a, ...}
   if #t > 8 then error('kbl: at most 8 dims, got ' .. #t, 3) end
   for i = 1, #t do
      local v = t[i]
      if type(v) ~= 'number' then error('kbl: sizes must be numbers, got ' .. tostring(v), 3) end
      shape_buf[i - 1] = v
   end
   return #t, shape_buf
end
M.shape_arg = shape_arg

function M.register(name, fn) methods[name] = fn end

local function live(t)
   local p = t._p
   if p == nil or p.storage == nil then error('kbl: this tensor was freed (by kbl.scope or t:free())', 3) end
   return p
end
M.live = live

-- ---- metadata ------------------------------------------------------------

--- The number of dims (also t:ndimension() and t.ndim).
-- @tparam tensor t
-- @treturn number
-- @usage print(kbl.zeros(2, 3):dim())  --> 2
function methods.dim(t) return live(t).ndim end
--- The number of dims (Torch7's name for dim).
-- @tparam tensor t
-- @treturn number
-- @usage local n = x:ndimension()
methods.ndimension = methods.dim
--- The number of elements (also t:nElement()).
-- @tparam tensor t
-- @treturn number
-- @usage print(kbl.zeros(2, 3):numel())  --> 6
function methods.numel(t) return tonumber(C.kbl_numel(live(t))) end
--- The number of elements (Torch7's name for numel).
-- @tparam tensor t
-- @treturn number
-- @usage local n = x:nElement()
methods.nElement = methods.numel

-- A size is a plain list of numbers that prints as Lua writes it: {2, 2}.
local size_mt = {__tostring = function(s)
   local parts = {}
   for i, v in ipairs(s) do parts[i] = type(v) == 'number' and v % 1 == 0 and string.format('%d', v) or tostring(v) end
   return '{' .. table.concat(parts, ', ') .. '}'
end}

--- The shape as a list {d1, d2, ...} (printed as Lua writes it), or the size of one dim.
-- @tparam tensor t
-- @tparam[opt] number d a dim from 1 (negative from the end)
-- @return a list of sizes, or a number
-- @usage print(x:size(), x:size(1))
function methods.size(t, d)
   local p = live(t)
   if d then return tonumber(p.shape[cindex(d, p.ndim, 'dimension')]) end
   local s = {}
   for i = 0, p.ndim - 1 do s[i + 1] = tonumber(p.shape[i]) end
   return setmetatable(s, size_mt)
end

--- The strides in elements, as a list, or the stride of one dim.
-- @tparam tensor t
-- @tparam[opt] number d a dim from 1
-- @return a list, or a number
-- @usage local s = x:t():stride()
function methods.stride(t, d)
   local p = live(t)
   if d then return tonumber(p.strides[cindex(d, p.ndim, 'dimension')]) end
   local s = {}
   for i = 0, p.ndim - 1 do s[i + 1] = tonumber(p.strides[i]) end
   return s
end

--- Whether the elements lie in order in memory.
-- @tparam tensor t
-- @treturn boolean
-- @usage print(x:t():is_contiguous())
function methods.is_contiguous(t) return C.kbl_is_contiguous(live(t)) ~= 0 end
--- Whether the tensor's data was freed (by kbl.scope or t:free()).
-- @tparam tensor t
-- @treturn boolean
-- @usage print(x:is_freed())
function methods.is_freed(t) return t._p == nil or t._p.storage == nil end
--- The dtype's name: 'float32', 'float64', 'int32', 'int64' or 'uint8' (also t.dtype).
-- @tparam tensor t
-- @treturn string
-- @usage print(x:type())
function methods.type(t) return dtype_names[live(t).dtype] end
--- The address of the first element (a cdata pointer), for FFI code.
-- @tparam tensor t
-- @return void*
-- @usage local p = ffi.cast('float *', x:data_ptr())
function methods.data_ptr(t) return C.kbl_data_ptr(live(t)) end
--- Whether two tensors share their storage (one is a view of the other).
-- @tparam tensor a
-- @tparam tensor b
-- @treturn boolean
-- @usage print(x:same_storage(x:view(-1)))
function methods.same_storage(a, b) return C.kbl_same_storage(live(a), live(b)) ~= 0 end

--- Frees the tensor's data now; it may not be used afterwards.
-- @tparam tensor t
-- @usage big:free()
function methods.free(t)
   if t._p ~= nil then C.kbl_tensor_free_data(t._p) end
end

function getters.shape(t) return methods.size(t) end
function getters.dtype(t) return dtype_names[live(t).dtype] end
function getters.ndim(t) return live(t).ndim end
function getters.device(t) return live(t).device == 0 and 'cpu' or 'cuda' end
function getters.requires_grad(t) return live(t).requires_grad ~= 0 end
function getters.is_leaf(t) return live(t).grad_fn == nil end
-- The gradient's handle is tracked like a new tensor: inside kbl.scope it is
-- freed at the end once nothing else holds it (after zero_grad, say), so a
-- step's dropped gradients do not wait for the collector.
function getters.grad(t)
   local h = wrap_retained(live(t).grad)
   if h then track(h) end
   return h
end
function getters.grad_fn(t)
   local s = C.kbl_grad_fn_name(live(t))
   return s ~= nil and ffi.string(s) or nil
end

-- ---- element access ---------------------------------------------------------

local ptr_types = {[0] = ffi.typeof('float *'), ffi.typeof('double *'), ffi.typeof('int32_t *'),
   ffi.typeof('int64_t *'), ffi.typeof('uint8_t *')}
M.ptr_types = ptr_types

-- Typed pointer to the first element of a CPU tensor.
local function elem_ptr(p)
   if p.device ~= 0 then
      error("kbl: the tensor is on cuda; read it with tolist(), item() or to('cpu')", 3)
   end
   return ffi.cast(ptr_types[p.dtype], C.kbl_data_ptr(p))
end
M.elem_ptr = elem_ptr

local function read(p, off)
   local v = elem_ptr(p)[off]
   return p.dtype == 3 and tonumber(v) or v
end

--- The value of a one-element tensor as a Lua number.
-- @tparam tensor t
-- @treturn number
-- @usage print(loss:item())
function methods.item(t)
   local ok = ffi.new('int[1]')
   local v = C.kbl_item(live(t), ok)
   if ok[0] == 0 then error(ffi.string(C.kbl_last_error()), 2) end
   return v
end

-- A CUDA tensor's values are read from a host copy (which waits for the device).
local function host(t)
   local p = live(t)
   if p.device == 0 then return t, p end
   local h = wrap(C.kbl_to_device(p, 0))
   return h, live(h)
end
M.host = host

--- The values as nested Lua tables (a number for a 0-dim tensor).
-- @tparam tensor t
-- @return a table or a number
-- @usage print(kbl.tensor{1, 2}:tolist()[2])  --> 2
function methods.tolist(t)
   local p
   t, p = host(t)
   local base = elem_ptr(p)
   local is64 = p.dtype == 3
   local function rec(d, off)
      if d == p.ndim then
         local v = base[off]
         return is64 and tonumber(v) or v
      end
      local out, st = {}, tonumber(p.strides[d])
      for i = 0, tonumber(p.shape[d]) - 1 do out[i + 1] = rec(d + 1, off + i * st) end
      return out
   end
   local out = rec(0, 0)
   -- t is used again here so that it (and the struct p points into) stays alive
   -- while rec reads through p: a collection during rec must not release it.
   live(t)
   return out
end

-- t[i]: an element of a 1-D tensor, a view of row i for more dims
local function index(t, k)
   local m = methods[k]
   if m ~= nil then return m end
   if type(k) == 'number' then
      local p = live(t)
      if p.ndim == 0 then error('kbl: cannot index a 0-dim tensor; use item()', 2) end
      local i = cindex(k, tonumber(p.shape[0]))
      if p.ndim == 1 then
         if p.device ~= 0 then return methods.item(wrap(C.kbl_select(p, 0, i))) end
         return read(p, i * tonumber(p.strides[0]))
      end
      return wrap(C.kbl_select(p, 0, i))
   end
   local g = getters[k]
   if g then return g(t) end
   return nil
end

local function newindex(t, k, v)
   if type(k) == 'number' then
      local p = live(t)
      if p.ndim == 0 then error('kbl: cannot index a 0-dim tensor; use fill_()', 2) end
      local i = cindex(k, tonumber(p.shape[0]))
      if p.ndim == 1 then
         if type(v) ~= 'number' then error('kbl: t[i] = v needs a number v for a 1-dim tensor', 2) end
         if p.device ~= 0 then
            methods.fill_(wrap(C.kbl_select(p, 0, i)), v)
            return
         end
         elem_ptr(p)[i * tonumber(p.strides[0])] = v
         return
      end
      local row = wrap(C.kbl_select(p, 0, i))
      if type(v) == 'number' then methods.fill_(row, v) else methods.copy_(row, v) end
   elseif k == 'requires_grad' then
      if C.kbl_set_requires_grad(live(t), v and 1 or 0) ~= 0 then error(ffi.string(C.kbl_last_error()), 2) end
   elseif k == 'grad' then
      if v ~= nil and not is_tensor(v) then error('kbl: grad must be a tensor or nil', 2) end
      if C.kbl_set_grad(live(t), v and live(v) or nil) ~= 0 then error(ffi.string(C.kbl_last_error()), 2) end
   else
      error("kbl: cannot set field '" .. tostring(k) .. "' of a tensor", 2)
   end
end

-- ---- operators (the op modules define the functions they call) ---------------

local mt = {
   __index = index,
   __newindex = newindex,
   __gc = function(h)
      if h._p ~= nil then
         C.kbl_tensor_release(h._p)
         h._p = nil
      end
   end,
   __len = function(t)
      local p = live(t)
      return p.ndim > 0 and tonumber(p.shape[0]) or 0
   end,
   __add = function(a, b) return methods.add(a, b) end,
   __sub = function(a, b) return methods.sub(a, b) end,
   __mul = function(a, b) return methods.mul(a, b) end,
   __div = function(a, b) return methods.div(a, b) end,
   __pow = function(a, b) return methods.pow(a, b) end,
   __unm = function(a) return methods.neg(a) end,
   __tostring = function(t) return require('kbl.print').format(t) end,
}
ffi.metatype(handle_ct, mt)

return M
