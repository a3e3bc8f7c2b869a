--- kbl.onnx.export: a block (a whole Model: preprocess, backbone, neck, head,
-- postprocess) as one ONNX file. The example input runs through the model in
-- eval mode while each block writes its nodes (kbl/onnx/blocks.lua), so the
-- recorded shapes are kbl's; the batch dim is dynamic ('N').
--
--   model:export('model.onnx', {example_input = x})   -- x: one or more rows as the data stores them
--   require('kbl.onnx.export').write(model, 'model.onnx', {example_input = x,
--      metadata = {class_names = '["a","b"]', config_hash = '...'}})
--
-- The file: IR version 8, opset 17, one input 'input' and one output 'output',
-- metadata_props from opts.metadata plus kbl_version.
local kbl = require 'kbl'
local graph = require 'kbl.onnx.graph'
local format = require 'kbl.onnx.format'
local exporters = require 'kbl.onnx.blocks'

local M = {}

M.OPSET, M.IR_VERSION = 17, 8
M.INPUT, M.OUTPUT = 'input', 'output'

-- The ModelProto table for a block and an example input.
function M.model_proto(block, opts)
   opts = opts or {}
   local x = opts.example_input
   if not kbl.is_tensor(x) then
      error('export: give {example_input = tensor}, rows of the input as the data stores them (e.g. uint8 images '
         .. '[1, 1, 28, 28])', 0)
   end
   if x:dim() < 1 then error('export: example_input needs a batch dim', 0) end
   local g = graph.new()
   local was = block.training
   block:eval()
   local ok, out = pcall(kbl.no_grad, function()
      -- a first full pass builds every lazy block (a head makes its layers in build)
      if type(block.predict) == 'function' then block:predict(x) else block(x) end
      local v = g:input(M.INPUT, x)
      local y = exporters.export(block, g, v, '')
      if not kbl.is_tensor(y.t) then error('onnx export: the model does not return one tensor', 0) end
      g:output(M.OUTPUT, y)
      return y
   end)
   block:train(was ~= false)
   if not ok then error(out, 0) end
   local metadata = {{'kbl_version', kbl.version()}}
   local extra = opts.metadata or {}
   for _, k in ipairs(require('kbl.util').sorted_keys(extra)) do metadata[#metadata + 1] = {k, tostring(extra[k])} end
   return {
      ir_version = M.IR_VERSION, opsets = {{domain = '', version = M.OPSET}},
      producer_name = 'kbl', producer_version = kbl.version(), metadata = metadata,
      doc_string = opts.doc_string,
      graph = {name = opts.name or block.type_name, nodes = g.nodes, initializers = g.initializers,
         inputs = g.inputs, outputs = g.outputs},
   }
end

-- Writes the file (through a temporary name, renamed when complete).
function M.write(block, path, opts)
   if type(path) ~= 'string' or path == '' then error('export: give the path of the .onnx file to write', 2) end
   local bytes = format.encode(M.model_proto(block, opts))
   require('kbl.io.binfile').write_atomic(path, bytes, 'export: cannot write ' .. path, 0)
   return path
end

return M
