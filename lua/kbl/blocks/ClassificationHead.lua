--- blocks.ClassificationHead{num_classes}: features to logits [N, num_classes].
-- [N, C, H, W] inputs are pooled (global average, `pool`), others flattened;
-- then optional hidden Dense layers (`hidden = {...}`, with `activation`), an
-- optional Dropout and the output Dense `fc`. Without num_classes the head
-- takes the data's (meta.num_classes) when it is built in training: kbl.fit
-- builds the model inside with_data_meta(meta, fn).
local Block = require 'kbl.blocks.Block'

local data_meta   -- the meta of the data a model is being built for, or nil

--- Runs fn() with meta as the data's meta, so heads built meanwhile take its num_classes (kbl.fit uses it).
-- @local
local function with_data_meta(meta, fn)
   local saved = data_meta
   data_meta = meta
   local ok, err = pcall(fn)
   data_meta = saved
   if not ok then error(err, 0) end
end

--- Makes a head type (ClassificationHead, RegressionHead) with its output count option.
-- @local
local function head(type_name, units_key)
   local options = {hidden = Block.NONE, activation = 'relu', dropout = 0}
   options[units_key] = units_key == 'outputs' and 1 or Block.NONE
   local cls = Block.extend(type_name, {options = options, positional = {units_key}})

   local function check(n)
      if type(n) ~= 'number' or n < 1 or n % 1 ~= 0 then
         error(string.format('blocks.%s: %s must be a positive whole number, got %s', type_name, units_key,
            tostring(n)), 5)
      end
   end

   function cls.init(_, o)
      if o[units_key] ~= nil then check(o[units_key]) end
   end

   function cls:build(x)
      local R, o = Block.registry, self.opts
      local n = o[units_key]
      if n == nil then
         n = data_meta and data_meta.num_classes
         if n == nil then
            error(string.format('blocks.%s: give %s (the data being fitted gives no meta.num_classes)',
               type_name, units_key), 0)
         end
         check(n)
      end
      if x:dim() == 4 then self:add('pool', R.GlobalAvgPool2D{}) end
      if x:dim() > 2 then self:add('flatten', R.Flatten{}) end
      for i, u in ipairs(o.hidden or {}) do self:add('hidden' .. i, R.Dense{u, activation = o.activation}) end
      if o.dropout > 0 then self:add('dropout', R.Dropout{o.dropout}) end
      self:add('fc', R.Dense{n})
   end

   cls.forward = Block.forward_children

   cls.make_head = head
   cls.with_data_meta = with_data_meta
   return cls
end

--- Features to class logits [N, num_classes].
-- @table ClassificationHead
-- @option activation the hidden layers' activation
-- @option dropout the rate of a Dropout before the output (0: none)
-- @option hidden a list of widths of hidden Dense layers before the output, or none
-- @option num_classes the number of classes; without it, the data's meta.num_classes when the run builds the model
-- @usage local b = blocks.ClassificationHead{num_classes = 10, hidden = {128}, dropout = 0.2}
return head('ClassificationHead', 'num_classes')
