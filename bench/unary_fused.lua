-- bench/unary_fused.lua — does a fused unary kernel pay against the same op
-- made of primitives? Times forward + backward of each, fused and composite,
-- on 1M float32 elements: OMP_NUM_THREADS=1 bin/kbl run-script ... or
-- luajit bench/unary_fused.lua [n] with kbl on the path. core/ops_unary.def
-- cites its result (bench/README.md, "Fused unary ops").
local kbl = require 'kbl'

local n = tonumber(arg and arg[1]) or 1000000
local function sigmoid(x) return ((-x):exp() + 1):reciprocal() end
local composites = {
   sigmoid = sigmoid,
   tanh = function(x) return sigmoid(x * 2) * 2 - 1 end,
   silu = function(x) return x * sigmoid(x) end,
   softplus = function(x) return x:exp():log1p() end,
   elu = function(x) return kbl.where(x:gt(0), x, x:exp() - 1) end,
   gelu_tanh = function(x)
      local u = (x + x:pow(3) * 0.044715) * math.sqrt(2 / math.pi)
      return x * 0.5 * (sigmoid(u * 2) * 2)
   end,
}
local fused = {gelu_tanh = function(x) return x:gelu('tanh') end}

local function best_ms(f, x)
   local best = math.huge
   for _ = 1, 7 do
      kbl.scope(function()
         x.grad = nil
         local t0 = os.clock()
         f(x):sum():backward()
         best = math.min(best, (os.clock() - t0) * 1000)
      end)
   end
   return best
end

-- Precision, on float32 inputs +-10^k (k from -6 to 2.5 by 1/8) and 0: the
-- largest relative error of the forward against the same function in float64
-- on the same (rounded) inputs, where |y| > 1e-30, and how many gradients are
-- not finite.
local function accuracy(f)
   local v = {0}
   for k = -48, 20 do v[#v + 1] = 10 ^ (k / 8); v[#v + 1] = -10 ^ (k / 8) end
   local x32 = kbl.tensor(v):requires_grad_()
   local y = f(x32)
   y:sum():backward()
   local ref = kbl.no_grad(function() return f(x32:detach():double()) end)
   local worst, bad = 0, 0
   for i = 1, #v do
      local a, r, g = y[i], ref[i], x32.grad[i]
      if a ~= a or math.abs(a) == math.huge then worst = math.huge
      elseif math.abs(r) > 1e-30 then worst = math.max(worst, math.abs(a - r) / math.abs(r)) end
      if g ~= g or math.abs(g) == math.huge then bad = bad + 1 end
   end
   return worst, bad
end

-- log_softmax along rows of [1000, n / 1000], fused against x - logsumexp(x)
fused.log_softmax = function(x) return x:reshape{1000, -1}:log_softmax(2) end
composites.log_softmax = function(x)
   local r = x:reshape{1000, -1}
   return r - r:logsumexp(2, true)
end

kbl.manual_seed(0)
local x = kbl.keep(kbl.randn(n):requires_grad_())
print(string.format('%-11s %9s %12s %6s  %-22s %s', 'op', 'fused ms', 'composite ms', 'ratio',
                    'max rel err fused/comp', 'non-finite grads fused/comp'))
for _, name in ipairs{'sigmoid', 'tanh', 'silu', 'softplus', 'elu', 'gelu_tanh', 'log_softmax'} do
   local f = fused[name] or function(t) return t[name](t) end
   local tf, tc = best_ms(f, x), best_ms(composites[name], x)
   local acc = name ~= 'log_softmax' -- rows of one element say nothing
   local ef, bf, ec, bc
   if acc then ef, bf = accuracy(f); ec, bc = accuracy(composites[name]) end
   print(string.format('%-11s %9.2f %12.2f %5.1fx  %-22s %s', name, tf, tc, tc / tf,
                       acc and string.format('%.1e / %.1e', ef, ec) or '-',
                       acc and string.format('%d / %d', bf, bc) or '-'))
end
