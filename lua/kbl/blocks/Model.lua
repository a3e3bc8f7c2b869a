--- blocks.Model{preprocess =, backbone =, neck =, head =, postprocess =}: a
-- model in the parts of ml-blocks and Verres, each optional. m(x) runs backbone,
-- neck and head, what trains; m:predict(raw) runs all five in eval mode without
-- gradients, so what runs in deployment is what was trained. Parts are blocks,
-- specs {type = ...} or functions (made Lambdas); they are children named by
-- their part, reachable as m.backbone, m.head, ...
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'

local PARTS = {'preprocess', 'backbone', 'neck', 'head', 'postprocess'}

local options = {}
for _, p in ipairs(PARTS) do options[p] = Block.NONE end
--- A model of five optional parts: preprocess, backbone, neck, head, postprocess.
-- @table Model
-- @option backbone the feature extractor
-- @option head the output layer(s); m(x) ends here
-- @option neck between backbone and head (pooling, say)
-- @option postprocess runs in predict and exported models only (softmax, say)
-- @option preprocess runs first in training, evaluation and predict (normalization, say)
-- @usage local b = blocks.Model{backbone = blocks.MLP{units = {64}}, head = blocks.ClassificationHead{num_classes = 10}}
local Model = Block.extend('Model', {options = options})

function Model:init(o)
   local any = false
   for _, part in ipairs(PARTS) do
      if o[part] ~= nil then
         self[part] = self:add(part, Block.as_block(o[part], 'the ' .. part), true)
         any = true
      end
   end
   if not any then error('blocks.Model needs at least one of ' .. table.concat(PARTS, ', '), 4) end
end

-- backbone, neck, head in turn
function Model:forward(x, ...)
   local first = true
   for _, part in ipairs{'backbone', 'neck', 'head'} do
      local b = self._child[part]
      if b then
         if first then x = b(x, ...) else x = b(x) end
         first = false
      end
   end
   return x
end

--- The preprocess part alone (identity when there is none), e.g. for a pipeline's map.
-- @param raw the input as the data stores it
-- @return the preprocessed input
-- @usage local x = model:prepare(batch.x)
function Model:prepare(raw)
   local p = self._child.preprocess
   if p then return p(raw) end
   return raw
end

--- Runs preprocess, backbone, neck, head and postprocess in eval mode without
-- recording gradients; the training mode is restored afterwards.
-- @param raw the input as the data stores it
-- @return the postprocessed output
-- @usage local probs = model:predict(images)
function Model:predict(raw)
   local was = self.training
   self:eval()
   local ok, res = pcall(kbl.no_grad, function()
      local y = self:forward(self:prepare(raw))
      local post = self._child.postprocess
      if post then y = post(y) end
      return y
   end)
   self:train(was)
   if not ok then error(res, 0) end
   return res
end

--- Writes all five parts as one ONNX file (opset 17, dynamic batch dim; kbl/onnx/export.lua).
-- @param path the .onnx file to write
-- @param opts {example_input = rows of input as the data stores it, metadata = {key = value}}
-- @usage m:export('model.onnx', {example_input = x})
function Model:export(path, opts)
   return require('kbl.onnx.export').write(self, path, opts)
end

return Model
