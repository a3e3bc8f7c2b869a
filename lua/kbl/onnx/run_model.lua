--- kbl.onnx.run_model: a run directory's model with what export and predict
-- need beside it: an example input (the first test element, as the data
-- stores it), the class names, the config hash (of config.lua's text).
--
--   local r = require('kbl.onnx.run_model').load(dir)
--   r.model, r.example, r.meta, r.class_names, r.config_hash, r.transforms
local kbl = require 'kbl'
local fs = require 'kbl.io.fs'

local M = {}

-- The first element of a split (test, else validation, else train) as a batch of one.
local function example(source)
   local last
   for _, split in ipairs{'test', 'validation', 'train'} do
      local ok, pipe = pcall(source.split, source, split)
      if ok and pipe then
         local okb, x = pcall(function()
            local p = pipe:batch(1)
            local batch = p:iter()()
            if p.close then p:close() end
            return batch and batch.x
         end)
         if okb and x then return kbl.keep(x:clone()) end
         last = x
      end
   end
   error('the run\'s data gives no element to take the input shape from' .. (last and (': ' .. tostring(last)) or ''),
      0)
end

function M.load(dir)
   if not fs.is_dir(dir) then error(dir .. ' is not a run directory', 0) end
   local text = fs.read(dir .. '/config.lua')
   if not text then error(dir .. ' is not a run directory: it has no config.lua', 0) end
   local model, cfg, trainer = kbl.load_run(dir)
   if not trainer.source then error(dir .. ': the run names no data source to take the input from', 0) end
   local meta = trainer.source.meta or {}
   return {
      model = model, cfg = cfg, trainer = trainer, meta = meta, dir = dir,
      example = example(trainer.source),
      class_names = meta.class_names,
      config_hash = require('kbl.data.base').hash_string(text),
      transforms = cfg.transforms,
   }
end

-- A model's output in eval mode without gradients: a Model's predict (all five
-- parts), or any other block's forward.
function M.predict(model, x)
   if type(model.predict) == 'function' then return model:predict(x) end
   model:eval()
   return kbl.no_grad(function() return model(x) end)
end

-- The export's metadata for a loaded run.
function M.metadata(r)
   local json = require 'dkjson'
   local md = {config_hash = r.config_hash, source_run = r.dir}
   if r.class_names then md.class_names = json.encode(r.class_names) end
   if r.cfg.name then md.experiment = tostring(r.cfg.name) end
   return md
end

return M
