-- examples/mlp_generated.lua: a small MLP trained on generated data through the
-- tensor API alone (no blocks, no optimizer library): the loss falls.
--   bin/kbl examples/mlp_generated.lua
local kbl = require 'kbl'
kbl.manual_seed(1)

-- Two interleaved classes on a plane: label 2 when x1*x2 > 0, else 1.
local n = 512
local x = kbl.randn(n, 2)
local y = kbl.gt(x:select(2, 1) * x:select(2, 2), 0):long() + 1

local function param(...) return kbl.keep(kbl.randn(...) * 0.5):detach():requires_grad_() end
local w1, b1 = param(32, 2), kbl.zeros({32}, {requires_grad = true})
local w2, b2 = param(2, 32), kbl.zeros({2}, {requires_grad = true})
local params = {w1, b1, w2, b2}
local lr = 0.5

for step = 1, 300 do
   local loss = kbl.scope(function()
      local h = kbl.linear(x, w1, b1):tanh()
      local l = kbl.cross_entropy(kbl.linear(h, w2, b2), y)
      l:backward()
      kbl.no_grad(function()
         for _, p in ipairs(params) do
            p:copy_(p - p.grad * lr)
            p:zero_grad()
         end
      end)
      return l:item()
   end)
   if step == 1 or step % 50 == 0 then print(string.format('step %3d  loss %.4f', step, loss)) end
end

local acc = kbl.no_grad(function()
   local logits = kbl.linear(kbl.linear(x, w1, b1):tanh(), w2, b2)
   return kbl.eq(logits:argmax(2), y):double():mean():item()
end)
print(string.format('train accuracy %.3f', acc))
