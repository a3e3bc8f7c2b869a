-- blocks.ClassificationHead{num_classes}: features to logits [N, num_classes].
-- [N, C, H, W] inputs are pooled (global average, `pool`), others flattened;
-- then optional hidden Dense layers (`hidden = {...}`, with `activation`), an
-- optional Dropout and the output Dense `fc`.
local Block = require 'blocks.Block'

local function head(type_name, units_key)
   local options = {hidden = Block.NONE, activation = 'relu', dropout = 0}
   options[units_key] = units_key == 'outputs' and 1 or Block.REQUIRED
   local cls = Block.extend(type_name, {options = options, positional = {units_key}})

   function cls.init(_, o)
      local n = o[units_key]
      if type(n) ~= 'number' or n < 1 or n % 1 ~= 0 then
         error(string.format('blocks.%s: %s must be a positive whole number, got %s', type_name, units_key,
            tostring(n)), 4)
      end
   end

   function cls:build(x)
      local R, o = Block.registry, self.opts
      if x:dim() == 4 then self:add('pool', R.GlobalAvgPool2D{}) end
      if x:dim() > 2 then self:add('flatten', R.Flatten{}) end
      for i, u in ipairs(o.hidden or {}) do self:add('hidden' .. i, R.Dense{u, activation = o.activation}) end
      if o.dropout > 0 then self:add('dropout', R.Dropout{o.dropout}) end
      self:add('fc', R.Dense{o[units_key]})
   end

   function cls:forward(x)
      for _, c in ipairs(self._children) do x = c[2](x) end
      return x
   end

   cls.make_head = head
   return cls
end

return head('ClassificationHead', 'num_classes')
