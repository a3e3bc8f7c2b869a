--- blocks.initializers: how parameters start. Each initializer fills a tensor in
-- place from kbl's seeded generator, given the fans of the layer
-- ({fan_in =, fan_out =}, counted as PyTorch does: a Conv2D weight
-- [out, in, kh, kw] has fan_in = in*kh*kw and fan_out = out*kh*kw).
-- An initializer is named by a string ('he_normal'), a table with options
-- ({'normal', std = 0.02} or {name = 'uniform', a = -1, b = 1}) or a function
-- fn(tensor, fans) that fills the tensor.
local kbl = require 'kbl'

local M = {}

local function uniform(t, limit) return t:uniform_(-limit, limit) end
local function normal(t, std) return t:normal_(0, std) end

local function fan(fans, which)
   local v = fans[which]
   if not v or v <= 0 then error('blocks.initializers: this initializer needs a positive ' .. which, 4) end
   return v
end

local makers = {}

function makers.zeros() return function(t) return t:fill_(0) end end
function makers.ones() return function(t) return t:fill_(1) end end
function makers.constant(o) return function(t) return t:fill_(o.value or o[2] or 0) end end

-- normal{mean = 0, std = 1}; uniform{a = 0, b = 1}: as torch.nn.init.normal_ / uniform_
function makers.normal(o) return function(t) return t:normal_(o.mean or 0, o.std or 1) end end
function makers.uniform(o) return function(t) return t:uniform_(o.a or 0, o.b or 1) end end

-- Glorot (Xavier): variance 2 / (fan_in + fan_out)
function makers.glorot_uniform(o)
   return function(t, f) return uniform(t, (o.gain or 1) * math.sqrt(6 / (fan(f, 'fan_in') + fan(f, 'fan_out')))) end
end
function makers.glorot_normal(o)
   return function(t, f) return normal(t, (o.gain or 1) * math.sqrt(2 / (fan(f, 'fan_in') + fan(f, 'fan_out')))) end
end
-- He (Kaiming, for ReLU): variance 2 / fan_in
function makers.he_uniform() return function(t, f) return uniform(t, math.sqrt(6 / fan(f, 'fan_in'))) end end
function makers.he_normal() return function(t, f) return normal(t, math.sqrt(2 / fan(f, 'fan_in'))) end end
-- LeCun (for SELU): variance 1 / fan_in
function makers.lecun_normal() return function(t, f) return normal(t, math.sqrt(1 / fan(f, 'fan_in'))) end end
function makers.lecun_uniform() return function(t, f) return uniform(t, math.sqrt(3 / fan(f, 'fan_in'))) end end

-- orthogonal{gain = 1}: the tensor seen as [size(1), rest] gets orthonormal rows
-- (or columns, when it has more rows than columns), from the Q of a QR
-- decomposition of a normal matrix with R's diagonal made positive, as
-- torch.nn.init.orthogonal_. kbl's core has no QR, and this runs once per
-- parameter on small matrices, so a modified Gram-Schmidt in Lua does it.
function makers.orthogonal(o)
   local gain = o.gain or 1
   return function(t)
      local size = t:size()
      if #size < 2 then error('blocks.initializers: orthogonal needs a tensor of at least 2 dims', 3) end
      local rows = size[1]
      local cols = t:numel() / rows
      local a = kbl.randn({rows, cols}, {dtype = 'float64'})
      local transposed = rows < cols
      if transposed then a = a:t():contiguous() end
      local m = a:tolist()                 -- [n, k] with n >= k: orthonormalize the k columns
      local n, k = #m, #m[1]
      for j = 1, k do
         for p = 1, j - 1 do
            local dot = 0
            for i = 1, n do dot = dot + m[i][p] * m[i][j] end
            for i = 1, n do m[i][j] = m[i][j] - dot * m[i][p] end
         end
         local norm = 0
         for i = 1, n do norm = norm + m[i][j] * m[i][j] end
         norm = math.sqrt(norm)
         for i = 1, n do m[i][j] = m[i][j] / norm end
      end
      local q = kbl.tensor(m, {dtype = 'float64'})
      if transposed then q = q:t() end
      kbl.no_grad(function() t:copy_(kbl.reshape(q:contiguous() * gain, size)) end)
      return t
   end
end

local function names()
   local out = {}
   for k in pairs(makers) do out[#out + 1] = k end
   table.sort(out)
   return out
end
M.names = names

-- The fill function for an initializer spec.
function M.get(spec)
   if type(spec) == 'function' then return spec end
   local name, o
   if type(spec) == 'string' then
      name, o = spec, {}
   elseif type(spec) == 'table' then
      name, o = spec.name or spec[1], spec
   end
   local maker = makers[name]
   if not maker then
      local near = require('kbl.blocks.Block').closest(tostring(name), names())
      error(string.format("blocks: unknown initializer '%s'%s (initializers: %s)", tostring(name),
         near and (" (did you mean '" .. near .. "'?)") or '', table.concat(names(), ', ')), 3)
   end
   return maker(o)
end

-- A new tensor of the given shape and dtype, filled by the initializer.
function M.make(spec, shape, dtype, fans)
   local t = kbl.empty(shape, {dtype = dtype or 'float32'})
   M.get(spec)(t, fans or {})
   return t
end

return M
