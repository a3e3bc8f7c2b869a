--- kbl.ops.creation: making tensors: from Lua tables, filled, ranges, eye, and
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

--- A tensor from a number or a nested table of numbers (booleans count as 1 and 0).
-- @param data a number or nested tables, rectangular
-- @tparam[opt] table opts {dtype = 'float32', requires_grad = false, device = 'cpu'}
-- @treturn tensor
-- @usage local x = kbl.tensor{{1, 2}, {3, 4}}
-- local y = kbl.tensor({1, 3}, {dtype = 'int64'})
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

--- An uninitialised tensor of the given shape.
-- @param ... the sizes, or one table of them, then optionally opts {dtype, requires_grad, device}
-- @treturn tensor
-- @usage local t = kbl.empty(2, 3)
function M.empty(...)
   local shape, o = args(...)
   local n, s = shape_arg(shape)
   return made(wrap(C.kbl_empty_on(device_of(o), n, s, dtype_of(o))), o)
end
--- A tensor of zeros.
-- @param ... the sizes, or one table of them, then optionally opts {dtype, requires_grad, device}
-- @treturn tensor
-- @usage local t = kbl.zeros({2, 3}, {dtype = 'float64'})
function M.zeros(...)
   local shape, o = args(...)
   local n, s = shape_arg(shape)
   return made(wrap(C.kbl_zeros_on(device_of(o), n, s, dtype_of(o))), o)
end
--- A tensor of ones.
-- @param ... the sizes, or one table of them, then optionally opts {dtype, requires_grad, device}
-- @treturn tensor
-- @usage local t = kbl.ones(2, 3)
function M.ones(...)
   local shape, o = args(...)
   local n, s = shape_arg(shape)
   return made(wrap(C.kbl_full_on(device_of(o), n, s, 1, dtype_of(o))), o)
end
--- A tensor filled with one value.
-- @tparam table shape the sizes
-- @tparam number value
-- @tparam[opt] table opts {dtype, requires_grad, device}
-- @treturn tensor
-- @usage local t = kbl.full({2, 2}, 7)
function M.full(shape, value, opts)
   opts = opts or {}
   local n, s = shape_arg(shape)
   return made(wrap(C.kbl_full_on(device_of(opts), n, s, value, dtype_of(opts))), opts)
end

--- Uniform random values in [0, 1) from kbl's generator (kbl.manual_seed).
-- @param ... the sizes, or one table of them, then optionally opts {dtype, requires_grad, device}
-- @treturn tensor
-- @usage local t = kbl.rand(2, 3)
function M.rand(...)
   local shape, o = args(...)
   local n, s = shape_arg(shape)
   return finish(wrap(C.kbl_rand(n, s, dtype_of(o))), o)
end
--- Standard normal random values from kbl's generator (kbl.manual_seed).
-- @param ... the sizes, or one table of them, then optionally opts {dtype, requires_grad, device}
-- @treturn tensor
-- @usage local w = kbl.randn({2, 3}, {requires_grad = true})
function M.randn(...)
   local shape, o = args(...)
   local n, s = shape_arg(shape)
   return finish(wrap(C.kbl_randn(n, s, dtype_of(o))), o)
end
--- Uniform random values in [low, high).
-- @tparam table shape
-- @tparam[opt=0] number low
-- @tparam[opt=1] number high
-- @tparam[opt] table opts {dtype, requires_grad, device}
-- @treturn tensor
-- @usage local t = kbl.uniform({3}, -1, 1)
function M.uniform(shape, low, high, opts)
   opts = opts or {}
   local n, s = shape_arg(shape)
   return finish(wrap(C.kbl_uniform(n, s, low or 0, high or 1, dtype_of(opts))), opts)
end
--- Normal random values with a mean and a standard deviation.
-- @tparam table shape
-- @tparam[opt=0] number mean
-- @tparam[opt=1] number std
-- @tparam[opt] table opts {dtype, requires_grad, device}
-- @treturn tensor
-- @usage local t = kbl.normal({3}, 0, 0.02)
function M.normal(shape, mean, std, opts)
   opts = opts or {}
   local n, s = shape_arg(shape)
   return finish(wrap(C.kbl_normal(n, s, mean or 0, std or 1, dtype_of(opts))), opts)
end
--- Random integers in [low, high), int64 unless opts.dtype says otherwise.
-- @tparam number low
-- @tparam number high
-- @tparam table shape
-- @tparam[opt] table opts {dtype = 'int64', device}
-- @treturn tensor
-- @usage local labels = kbl.randint(1, 11, {32})
function M.randint(low, high, shape, opts)
   opts = opts or {}
   local n, s = shape_arg(shape)
   return finish(wrap(C.kbl_randint(n, s, low, high, lib.dtype_id(opts.dtype or 'int64'))), opts)
end
--- A random permutation of the positions 1..n (int64).
-- @tparam number n
-- @tparam[opt] table opts {dtype, device}
-- @treturn tensor [n]
-- @usage local order = kbl.randperm(10)
function M.randperm(n, opts)
   opts = opts or {}
   local p = wrap(C.kbl_randperm(n, 3))
   return wrap(C.kbl_unary(C.KBL_AFFINE, live(p), 1, 1)):to(opts.dtype or 'int64')
end

--- Values in [start, end) by step, as PyTorch's arange: arange(end) or arange(start, end[, step]).
-- @tparam number a end, or start when b is given
-- @tparam[opt] number b end
-- @tparam[opt=1] number c step
-- @tparam[opt] table opts {dtype (int64 for whole-number arguments, else float32), device}
-- @treturn tensor
-- @usage print(kbl.arange(1, 4):tolist())
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

--- steps values evenly spaced from start to stop, both included.
-- @tparam number start
-- @tparam number stop
-- @tparam[opt=100] number steps
-- @tparam[opt] table opts {dtype, device}
-- @treturn tensor [steps]
-- @usage local t = kbl.linspace(0, 1, 5)
function M.linspace(start, stop, steps, opts)
   opts = opts or {}
   return finish(wrap(C.kbl_linspace(start, stop, steps or 100, dtype_of(opts))), opts)
end

--- The identity matrix (ones on the diagonal).
-- @tparam number n rows
-- @tparam[opt=n] number m columns
-- @tparam[opt] table opts {dtype, device}
-- @treturn tensor [n, m]
-- @usage local i = kbl.eye(3)
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
--- Zeros with t's shape, dtype and device (unless opts say otherwise).
-- @tparam tensor t
-- @tparam[opt] table opts {dtype, device, requires_grad}
-- @treturn tensor
-- @usage local g = kbl.zeros_like(w)
M.zeros_like = like(M.zeros)
--- Ones with t's shape, dtype and device (unless opts say otherwise).
-- @tparam tensor t
-- @tparam[opt] table opts {dtype, device, requires_grad}
-- @treturn tensor
-- @usage local o = kbl.ones_like(x)
M.ones_like = like(M.ones)
--- Uniform [0, 1) values with t's shape, dtype and device.
-- @tparam tensor t
-- @tparam[opt] table opts {dtype, device, requires_grad}
-- @treturn tensor
-- @usage local r = kbl.rand_like(x)
M.rand_like = like(M.rand)
--- Standard normal values with t's shape, dtype and device.
-- @tparam tensor t
-- @tparam[opt] table opts {dtype, device, requires_grad}
-- @treturn tensor
-- @usage local noise = kbl.randn_like(x) * 0.1
M.randn_like = like(M.randn)
--- An uninitialised tensor with t's shape, dtype and device.
-- @tparam tensor t
-- @tparam[opt] table opts {dtype, device, requires_grad}
-- @treturn tensor
-- @usage local buf = kbl.empty_like(x)
M.empty_like = like(M.empty)
--- A tensor of value v with t's shape, dtype and device.
-- @tparam tensor t
-- @tparam number v
-- @tparam[opt] table opts {dtype, device, requires_grad}
-- @treturn tensor
-- @usage local f = kbl.full_like(x, -1)
function M.full_like(t, v, opts)
   opts = opts or {}
   local r = M.full(t:size(), v, {dtype = opts.dtype or t.dtype, device = opts.device or t.device})
   if opts.requires_grad then r:requires_grad_(true) end
   return r
end

--- Fills t in place with uniform values in [low, high).
-- @tparam tensor t
-- @tparam[opt=0] number low
-- @tparam[opt=1] number high
-- @treturn tensor t
-- @usage w:uniform_(-0.1, 0.1)
function M.uniform_(t, low, high)
   if C.kbl_uniform_(live(t), low or 0, high or 1) ~= 0 then error(ffi.string(C.kbl_last_error()), 2) end
   return t
end
--- Fills t in place with normal values.
-- @tparam tensor t
-- @tparam[opt=0] number mean
-- @tparam[opt=1] number std
-- @treturn tensor t
-- @usage w:normal_(0, 0.02)
function M.normal_(t, mean, std)
   if C.kbl_normal_(live(t), mean or 0, std or 1) ~= 0 then error(ffi.string(C.kbl_last_error()), 2) end
   return t
end
register('uniform_', M.uniform_)
register('normal_', M.normal_)
for _, name in ipairs{'zeros_like', 'ones_like', 'rand_like', 'randn_like', 'empty_like', 'full_like'} do
   register(name, M[name])
end

--- Seeds kbl's counter-based generator (Philox): the same seed gives the same numbers on any thread count.
-- @tparam number seed
-- @usage kbl.manual_seed(7)
function M.manual_seed(seed) C.kbl_manual_seed(seed) end
--- The generator's state, two numbers (a checkpoint keeps them).
-- @treturn table {seed = n, offset = n}
-- @usage local s = kbl.get_rng_state(); kbl.set_rng_state(s)
function M.get_rng_state()
   local s, o = ffi.new('uint64_t[1]'), ffi.new('uint64_t[1]')
   C.kbl_generator_get_state(s, o)
   return {seed = tonumber(s[0]), offset = tonumber(o[0])}
end
--- Restores a state from get_rng_state.
-- @tparam table st {seed = n, offset = n}
-- @usage kbl.set_rng_state(s)
function M.set_rng_state(st) C.kbl_generator_set_state(st.seed, st.offset) end

return M
