-- bench/mlp_step.lua — the MLP 784-256-256-10 training step at batch 128 that
-- bench/mlp.lua and bench/data.lua time: forward, cross entropy and backward,
-- then opt:step when an optimizer is given. Loaded with dofile; returns
-- make(opt) -> a function of no arguments running one step.
local kbl = require 'kbl'

return function(opt)
   local x = kbl.randn(128, 784)
   local y = kbl.randint(1, 11, {128})
   local params = {}
   for _, s in ipairs{{784, 256}, {256, 256}, {256, 10}} do
      local i, o = s[1], s[2]
      params[#params + 1] = kbl.keep((kbl.randn(o, i) * math.sqrt(2 / i)):detach():requires_grad_())
      params[#params + 1] = kbl.keep(kbl.zeros({o}, {requires_grad = true}))
   end
   return function()
      kbl.scope(function()
         local h = x
         for k = 0, 2 do
            h = kbl.linear(h, params[2 * k + 1], params[2 * k + 2])
            if k < 2 then h = h:relu() end
         end
         local loss = kbl.cross_entropy(h, y)
         for _, p in ipairs(params) do p.grad = nil end
         loss:backward()
         if opt then opt:step(params) end
      end)
   end
end
