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

kbl.manual_seed(0)
local x = kbl.keep(kbl.randn(n):requires_grad_())
print(string.format('%-10s %10s %12s %7s', 'op', 'fused ms', 'composite ms', 'ratio'))
for _, name in ipairs{'sigmoid', 'tanh', 'silu', 'softplus', 'elu', 'gelu_tanh'} do
   local f = fused[name] or function(t) return t[name](t) end
   local tf, tc = best_ms(f, x), best_ms(composites[name], x)
   print(string.format('%-10s %10.2f %12.2f %6.1fx', name, tf, tc, tc / tf))
end
