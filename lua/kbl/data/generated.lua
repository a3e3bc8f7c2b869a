--- kbl.data.generated: small synthetic sources for tests and examples, a pure
-- function of their arguments (the seed included).
--
--   data.generated{kind = 'blobs', n = 300, seed = 1, classes = 3, dim = 2, spread = 0.5, test = 100}
--   data.generated{kind = 'xor', n = 200, seed = 1, noise = 0.1}        -- 2 classes in [-1, 1]^2
--   data.generated{kind = 'regression', n = 200, seed = 1, dim = 3, noise = 0.1}
--                                        -- y = x . w + b + noise, float32 [n]
-- n is the training size; test (default n / 4) and validation (default 0)
-- add those splits. Labels are int64 1..C.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local kbl = require 'kbl'
local T = require 'kbl.tensor'
local B = require 'kbl.data.base'
local Source = require 'kbl.data.source'
local check_options = require 'kbl.options'
local C = lib.C

local function rng(seed, stream)
   local k = 0
   local g = {}
   function g.uniform(lo, hi)
      k = k + 1
      local u = tonumber(C.kbl_data_randint(seed, stream, 0, k, 0, 2 ^ 53)) / 2 ^ 53
      return (lo or 0) + ((hi or 1) - (lo or 0)) * u
   end
   function g.normal()
      local u1, u2 = 1 - g.uniform(), g.uniform()
      return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
   end
   return g
end

local function make(kind, n, o, stream)
   local seed = o.seed or 0
   local g = rng(seed, stream)
   local dim = o.dim or 2
   local xs = ffi.new('double[?]', math.max(1, n * dim))
   local ys = {}
   if kind == 'blobs' then
      local classes = o.classes or 3
      local cg = rng(seed, 0) -- centers shared by every split
      local centers = {}
      for c = 1, classes do
         centers[c] = {}
         for d = 1, dim do centers[c][d] = cg.uniform(-5, 5) end
      end
      for i = 0, n - 1 do
         local c = math.floor(g.uniform() * classes) + 1
         for d = 1, dim do xs[i * dim + d - 1] = centers[c][d] + (o.spread or 0.5) * g.normal() end
         ys[i + 1] = c
      end
   elseif kind == 'xor' then
      dim = 2
      for i = 0, n - 1 do
         local a, b = g.uniform(-1, 1), g.uniform(-1, 1)
         xs[2 * i], xs[2 * i + 1] = a + (o.noise or 0) * g.normal(), b + (o.noise or 0) * g.normal()
         ys[i + 1] = (a * b > 0) and 2 or 1
      end
   elseif kind == 'regression' then
      local wg = rng(seed, 0)
      local w, bias = {}, wg.normal()
      for d = 1, dim do w[d] = wg.normal() end
      for i = 0, n - 1 do
         local s = bias
         for d = 1, dim do
            local v = g.normal()
            xs[i * dim + d - 1] = v
            s = s + w[d] * v
         end
         ys[i + 1] = s + (o.noise or 0.1) * g.normal()
      end
   else
      error("data.generated: unknown kind '" .. tostring(kind) .. "' (blobs, xor or regression)", 3)
   end
   local x = T.wrap(C.kbl_from_doubles(2, ffi.new('int64_t[2]', n, dim), xs, 0))
   local y = kbl.tensor(ys, {dtype = kind == 'regression' and 'float32' or 'int64'})
   return x, y, dim
end

--- A small synthetic source, a pure function of its arguments (the seed included).
-- @tparam table o {kind = 'blobs' | 'xor' | 'regression', n (training size), seed = 1,
-- classes, dim, spread, noise, test = n / 4, validation = 0}
-- @treturn table a source
-- @usage local src = data.generated{kind = 'blobs', n = 300, classes = 3, dim = 2}
return function(o)
   o = o or {}
   check_options('data.generated', o, {'kind', 'n', 'seed', 'classes', 'dim', 'spread', 'noise', 'test', 'validation'})
   local kind, n = o.kind or 'blobs', o.n or 200
   if type(n) ~= 'number' or n < 1 or n % 1 ~= 0 then error('data.generated: n must be a positive integer', 2) end
   local name = 'generated_' .. kind
   local ntest = o.test or math.floor(n / 4)
   local nval = o.validation or 0
   local x, y = make(kind, n + nval, o, 1)
   local splits = {train = B.new{x = x, y = y, name = name .. '/train'}}
   if ntest > 0 then
      local tx, ty = make(kind, ntest, o, 2)
      splits.test = B.new{x = tx, y = ty, name = name .. '/test'}
   end
   splits = Source.carve(splits, nval, name)
   local meta = {}
   if kind == 'blobs' then meta.num_classes = o.classes or 3 elseif kind == 'xor' then meta.num_classes = 2 end
   return Source.new{name = name, splits = splits, meta = meta}
end
