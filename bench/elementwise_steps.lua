-- bench/elementwise_steps.lua — a fixed, small elementwise-heavy training step
-- (activations, arithmetic and their backward on a 256x256 float32 tensor) for
-- counting instructions: OMP_NUM_THREADS=1 valgrind --tool=callgrind luajit
-- bench/elementwise_steps.lua [steps]. Prints a checksum so both sides agree.
local kbl = require 'kbl'

local steps = tonumber(arg and arg[1]) or 20
kbl.manual_seed(0)
local x = kbl.keep(kbl.randn(256, 256):requires_grad_())
local w = kbl.keep(kbl.randn(256, 256):requires_grad_())
local sum = 0
for _ = 1, steps do
   kbl.scope(function()
      x.grad, w.grad = nil, nil
      local h = x:tanh() + x:sigmoid() * w:silu() + x:gelu() - w:relu() * x:exp():log1p()
      h = h:softplus() + (h * w):abs():sqrt() + h:pow(2) / (w:square() + 1)
      local loss = (h:elu() + h:leaky_relu()):sum()
      loss:backward()
      sum = sum + loss:item() + x.grad:sum():item()
   end)
end
print(string.format('checksum %.6e', sum))
