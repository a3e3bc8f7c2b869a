--- kbl export RUN_DIR -o model.onnx: the run's whole Model (preprocess,
-- backbone, neck, head, postprocess) as one ONNX file (opset 17, dynamic
-- batch dim), with the class names, the config hash and the run directory in
-- its metadata. The input is what the run's data stores (e.g. uint8 images
-- [N, 1, 28, 28]); the config's `transforms` are pipeline steps, not part of the
-- model, so a run that has any is exported with a warning saying so.
local M = {summary = 'Export a run\'s model (with pre- and post-processing) as an ONNX file.'}

function M.describe(cmd)
   cmd:argument('run_dir', 'A run directory (kbl run).')
   cmd:option('-o --output', 'The ONNX file to write.', 'model.onnx')
end

function M.run(args)
   local run_model = require 'kbl.onnx.run_model'
   local r = run_model.load(args.run_dir)
   if r.transforms and #r.transforms > 0 then
      io.stderr:write('kbl export: warning: ', args.run_dir, "'s config has transforms (", tostring(r.transforms[1][1]),
         ' ...), which run in the data pipeline, not in the model: the exported model takes their output. ',
         "Move them into the Model's preprocess (blocks.Normalize) to export them.\n")
   end
   local example = r.example
   require('kbl.onnx.export').write(r.model, args.output, {example_input = example, metadata = run_model.metadata(r),
      name = r.cfg.name and tostring(r.cfg.name) or nil})
   local s = example:size()
   s[1] = 'N'
   print(string.format('%s: input %s [%s]', args.output, example.dtype, table.concat(s, ', ')))
end

return M
