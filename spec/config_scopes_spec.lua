-- spec/config_scopes_spec.lua: configs closer to the seed systems: defaults
-- scoped by the key path a block is made under (gin's `scope/Dense.units`),
-- in a config and in a script; a --set spelling for keys that hold dots.
local kbl = require 'kbl'
local blocks = require 'kbl.blocks'
local config = require 'kbl.config'
local H = require 'helper'

local dir = H.tmpdir()

local function params(m)
   local out = {}
   for _, np in ipairs(m:named_parameters()) do out[np[1]] = np[2]:numel() end
   return out
end

describe('scoped defaults', function()
   teardown(function() os.execute('rm -rf ' .. dir) end)

   it("['backbone/blocks.Dense'] reaches only the Dense blocks made under model.backbone", function()
      local path = H.write(dir .. '/scoped.lua', [[
return {
   extends = 'fit', name = 'scoped', epochs = 1, batch_size = 16,
   data = data.generated{kind = 'blobs', n = 64, dim = 8, classes = 3, seed = 5},
   model = blocks.Model{backbone = blocks.MLP{units = {8, 8}}, head = blocks.ClassificationHead{3, hidden = {4}}},
   defaults = {['backbone/blocks.Dense'] = {use_bias = false}, ['blocks.Dense'] = {kernel_init = 'zeros'}},
   optimizer = optim.SGD{lr = 0.1},
}
]])
      local cfg, origins = config.load({path})
      local trainer = require('kbl.config.experiment').trainer(cfg, {quiet = true, origins = origins})
      trainer:build()
      trainer.restore_defaults()
      local p = params(trainer.model)
      assert.is_nil(p['backbone.dense1.bias'])
      assert.is_nil(p['backbone.dense2.bias'])
      assert.equal(64, p['backbone.dense1.weight'])
      -- the head (its Dense made on its first input) keeps its bias; the unscoped default reaches both
      assert.equal(4, p['head.hidden1.bias'])
      assert.equal(3, p['head.fc.bias'])
      assert.equal(0, trainer.model:state_dict()['head.fc.weight']:abs():sum():item())
      assert.equal(0, trainer.model:state_dict()['backbone.dense1.weight']:abs():sum():item())
      -- undone with the run: a Dense made now has its bias
      assert.truthy(params((function() local d = blocks.Dense{2}; d(kbl.zeros(1, 2)); return d end)())['bias'])
      -- the saved config keeps the key
      assert.truthy(config.to_lua(cfg):find('["backbone/blocks.Dense"] = {use_bias = false}', 1, true))
   end)

   it('works from a script with blocks.defaults and in_scope', function()
      local defaults = require 'kbl.blocks.defaults'
      blocks.defaults['encoder/Dense'] = {use_bias = false}
      local inside = defaults.in_scope({'encoder'}, function() return blocks.MLP{units = {4}} end)
      local outside = blocks.MLP{units = {4}}
      inside(kbl.zeros(1, 3))
      outside(kbl.zeros(1, 3))
      defaults.reset('Dense')
      assert.is_nil(params(inside)['dense1.bias'])
      assert.equal(4, params(outside)['dense1.bias'])
      local ok, err = pcall(function() blocks.defaults['encoder/Dense'].unitz = 3 end)
      assert.is_false(ok)
      assert.matches("unknown option 'unitz'", err, 1, true)
   end)

   it('refuses a scoped key that names no block type', function()
      local path = H.write(dir .. '/badscope.lua', [[
return {extends = 'fit', data = data.generated{}, model = blocks.Dense{3},
   defaults = {['backbone/optim.Adam'] = {lr = 1}}}
]])
      local ok, err = pcall(config.load, {path})
      assert.is_false(ok)
      assert.matches("or a scope and a block type such as ['backbone/blocks.Dense'], "
         .. 'got string "backbone/optim.Adam"',
         err, 1, true)
   end)
end)

describe('--set with a key that holds dots', function()
   local dir2 = H.tmpdir()
   teardown(function() os.execute('rm -rf ' .. dir2) end)
   local base = H.write(dir2 .. '/base.lua',
      "return {extends = 'fit', data = data.generated{}, model = blocks.Dense{3}}")

   it('takes the part in brackets, quoted or not', function()
      for _, set in ipairs{'defaults[blocks.Dense].use_bias=false', "defaults['blocks.Dense'].use_bias=false",
         'defaults["blocks.Dense"].use_bias=false'} do
         local cfg = config.load({base}, {set = {set}})
         assert.is_false(cfg.defaults['blocks.Dense'].use_bias, set)
      end
      local cfg = config.load({base}, {set = {'defaults[backbone/blocks.Dense].units=4'}})
      assert.equal(4, cfg.defaults['backbone/blocks.Dense'].units)
   end)

   it('names an unclosed bracket', function()
      local ok, err = pcall(config.load, {base}, {set = {'defaults[blocks.Dense.use_bias=false'}})
      assert.is_false(ok)
      assert.equal("--set defaults[blocks.Dense.use_bias=false: '[' at character 9 has no ']'", err)
   end)
end)
