-- kbl.ops.creation: making tensors: from Lua tables, filled, ranges, eye, and
-- random ones from the counter-based generator (kbl.manual_seed). Options are a
-- table {dtype = 'float32', requires_grad = false}.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C
local wrap, live, shape_arg, register = T.wrap, T.live, T.shape_arg, T.register

local M = {}

-- Splits (shape..., opts) or ({shape}, opts) into ndim, shape buffer, opts.
local function args(...)
   local n = select('#', ...)
   local last = select(n, ...)
   local opts = {}
   if n > 0 and type(last) == 'table' and (last.dtype or last.requires_grad ~= nil or last.device) then
      opts = last
      n = n - 1
   end
   local first = ...
   if n == 1 and type(first) == 'table' then return first, opts end
   local shape = {}
   for i = 1, n do shape[i] = (select(i, ...)) end
   return shape, opts
end

local function finish(t, opts)
   if opts.device and opts.device ~= 'cpu' then t = t:to(opts.device) end
   if opts.requires_grad then t:requires_grad_(true) end
   return t
end

local function dtype_of(opts) return lib.dtype_id(opts.dtype) end

-- Infers the shape of nested tables and flattens them; returns nil and a
-- message naming the position for a ragged or non-numeric table.
local function flatten_table(data)
   local shape, node = {}, data
   while type(node) == 'table' do
      shape[#shape + 1] = #node
      node = node[1]
   end
   local n = 1
   for _, s in ipairs(shape) do n = n * s end
   local buf = ffi.new('double[?]', math.max(n, 1))
   local k = 0
   local function rec(x, d, path)
      if d > #shape then
         if type(x) == 'boolean' then x = x and 1 or 0 end
         if type(x) == 'table' then
            return string.format('kbl.tensor: element %s is a table where a number was expected '
               .. '(ragged nested table)', path)
         end
         if type(x) ~= 'number' then return 'kbl.tensor: element ' .. path .. ' is not a number' end
         buf[k] = x
         k = k + 1
         return nil
      end
      if type(x) ~= 'table' or #x ~= shape[d] then
         return string.format('kbl.tensor: ragged nested table at %s (expected %d elements)', path, shape[d])
      end
      for i = 1, #x do
         local err = rec(x[i], d + 1, path .. '[' .. i .. ']')
         if err then return err end
      end
      return nil
   end
   local err = rec(data, 1, 'data')
   if err then return nil, err end
   return shape, buf
end

-- tensor(nested table or number, opts)
function M.tensor(data, opts)
   opts = opts or {}
   if T.is_tensor(data) then return finish(data:to(opts.dtype or data.dtype):clone(), opts) end
   local shape, buf
   if type(data) == 'number' then
      shape, buf = {}, ffi.new('double[1]', data)
   elseif type(data) == 'table' then
      shape, buf = flatten_table(data)
      if not shape then error(buf, 2) end
   else
      error('kbl.tensor: expected a number or a nested table, got ' .. type(data), 2)
   end
   local n, s = shape_arg(shape)
   return finish(wrap(C.kbl_from_doubles(n, s, buf, dtype_of(opts))), opts)
end

-- opts.device as the core's device number (made there directly, not moved)
local function device_of(opts)
   if opts.device == nil then return 0 end
   local id = require('kbl.ops.views').device_id(opts.device)
   if id == nil then
      error(string.format("kbl: unknown device '%s' (use 'cpu' or 'cuda')", tostring(opts.device)), 3)
   end
   return id
end
local function made(t, opts)
   if opts.requires_grad then t:requires_grad_(true) end
   return t
end

function M.empty(...)
   local shape, o = args(...)
   local n, s = shape_arg(shape)
   return made(wrap(C.kbl_empty_on(device_of(o), n, s, dtype_of(o))), o)
end
function M.zeros(...)
   local shape, o = args(...)
   local n, s = shape_arg(shape)
   return made(wrap(C.kbl_zeros_on(device_of(o), n, s, dtype_of(o))), o)
end
function M.ones(...)
   local shape, o = args(...)
   local n, s = shape_arg(shape)
   return made(wrap(C.kbl_full_on(device_of(o), n, s, 1, dtype_of(o))), o)
end
function M.full(shape, value, opts)
   opts = opts or {}
   local n, s = shape_arg(shape)
   return made(wrap(C.kbl_full_on(device_of(opts), n, s, value, dtype_of(opts))), opts)
end

function M.rand(...)
   local shape, o = args(...)
   local n, s = shape_arg(shape)
   return finish(wrap(C.kbl_rand(n, s, dtype_of(o))), o)
end
function M.randn(...)
   local shape, o = args(...)
   local n, s = shape_arg(shape)
   return finish(wrap(C.kbl_randn(n, s, dtype_of(o))), o)
end
function M.uniform(shape, low, high, opts)
   opts = opts or {}
   local n, s = shape_arg(shape)
   return finish(wrap(C.kbl_uniform(n, s, low or 0, high or 1, dtype_of(opts))), opts)
end
function M.normal(shape, mean, std, opts)
   opts = opts or {}
   local n, s = shape_arg(shape)
   return finish(wrap(C.kbl_normal(n, s, mean or 0, std or 1, dtype_of(opts))), opts)
end
-- randint(low, high, shape): integers in [low, high), int64 unless opts.dtype says otherwise
function M.randint(low, high, shape, opts)
   opts = opts or {}
   local n, s = shape_arg(shape)
   return finish(wrap(C.kbl_randint(n, s, low, high, lib.dtype_id(opts.dtype or 'int64'))), opts)
end
-- randperm(n): a random permutation of the positions 1..n (int64)
function M.randperm(n, opts)
   opts = opts or {}
   local p = wrap(C.kbl_randperm(n, 3))
   return wrap(C.kbl_unary(C.KBL_AFFINE, live(p), 1, 1)):to(opts.dtype or 'int64')
end

-- arange(end) or arange(start, end, step): values in [start, end), as PyTorch
function M.arange(a, b, c, opts)
   if type(b) == 'table' then opts, b = b, nil end
   if type(c) == 'table' then opts, c = c, nil end
   opts = opts or {}
   local start, stop, step = 0, a, 1
   if b then start, stop, step = a, b, c or 1 end
   local all_int = start % 1 == 0 and stop % 1 == 0 and step % 1 == 0
   local dt = opts.dtype or (all_int and 'int64' or 'float32')
   return finish(wrap(C.kbl_arange(start, stop, step, lib.dtype_id(dt))), opts)
end

function M.linspace(start, stop, steps, opts)
   opts = opts or {}
   return finish(wrap(C.kbl_linspace(start, stop, steps or 100, dtype_of(opts))), opts)
end

function M.eye(n, m, opts)
   if type(m) == 'table' then opts, m = m, nil end
   opts = opts or {}
   return finish(wrap(C.kbl_eye(n, m or n, dtype_of(opts))), opts)
end

-- zeros_like(t) and the rest: t's shape, dtype and device unless opts say otherwise
local function like(fn)
   return function(t, opts)
      opts = opts or {}
      local o = {dtype = opts.dtype or t.dtype, device = opts.device or t.device}
      local r = fn(t:size(), o)
      if opts.requires_grad then r:requires_grad_(true) end
      return r
   end
end
M.zeros_like = like(M.zeros)
M.ones_like = like(M.ones)
M.rand_like = like(M.rand)
M.randn_like = like(M.randn)
M.empty_like = like(M.empty)
function M.full_like(t, v, opts)
   opts = opts or {}
   local r = M.full(t:size(), v, {dtype = opts.dtype or t.dtype, device = opts.device or t.device})
   if opts.requires_grad then r:requires_grad_(true) end
   return r
end

-- In-place random fills
function M.uniform_(t, low, high)
   if C.kbl_uniform_(live(t), low or 0, high or 1) ~= 0 then error(ffi.string(C.kbl_last_error()), 2) end
   return t
end
function M.normal_(t, mean, std)
   if C.kbl_normal_(live(t), mean or 0, std or 1) ~= 0 then error(ffi.string(C.kbl_last_error()), 2) end
   return t
end
register('uniform_', M.uniform_)
register('normal_', M.normal_)
for _, name in ipairs{'zeros_like', 'ones_like', 'rand_like', 'randn_like', 'empty_like', 'full_like'} do
   register(name, M[name])
end

-- The generator: state is (seed, offset), two numbers a checkpoint stores.
function M.manual_seed(seed) C.kbl_manual_seed(seed) end
function M.get_rng_state()
   local s, o = ffi.new('uint64_t[1]'), ffi.new('uint64_t[1]')
   C.kbl_generator_get_state(s, o)
   return {seed = tonumber(s[0]), offset = tonumber(o[0])}
end
function M.set_rng_state(st) C.kbl_generator_set_state(st.seed, st.offset) end

return M
