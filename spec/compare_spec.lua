-- spec/compare_spec.lua: kbl compare on two tiny runs names exactly the config
-- keys that differ (a positional argument and its named form agree) and puts
-- their final metrics side by side, as text and as --json; a sweep directory
-- stands for its runs; a directory that is neither is named.
local json = require 'dkjson'
local H = require 'helper'
local compare = require 'kbl.commands.compare'

local dir = H.tmpdir()

local TINY = H.tiny_config{n = 64}

local last_epoch = H.last_epoch

describe('kbl compare', function()
   teardown(function() os.execute('rm -rf ' .. dir) end)

   local cfg = H.write(dir .. '/tiny.lua', TINY)
   local a, b = dir .. '/a', dir .. '/b'
   local rc1, _, e1 = H.kbl('run ' .. cfg .. ' --quiet --run-dir ' .. a, dir)
   -- units set by name where the file gives it by position: the same key
   local rc2, _, e2 = H.kbl('run ' .. cfg .. " --quiet --set optimizer.lr=0.003 --set model.1.units=8 "
      .. "--set batch_size=16 --run-dir " .. b, dir)

   it('names exactly the keys that differ, with the final metrics side by side', function()
      assert.are.equal(0, rc1, e1)
      assert.are.equal(0, rc2, e2)
      local rc, out, err = H.kbl('compare --json ' .. a .. ' ' .. b, dir)
      assert.are.equal(0, rc, err)
      local r = json.decode(out)
      assert.are.same({'model.1.units', 'optimizer.lr'}, r.keys)
      assert.are.same({['model.1.units'] = '16', ['optimizer.lr'] = '0.01'}, r.runs[1].config)
      assert.are.same({['model.1.units'] = '8', ['optimizer.lr'] = '0.003'}, r.runs[2].config)
      for i, d in ipairs{a, b} do
         local last = last_epoch(d)
         assert.are.equal(last.val_loss, r.runs[i].metrics.val_loss)
         assert.are.equal(last.accuracy, r.runs[i].metrics.accuracy)
         assert.is_number(r.runs[i].metrics.test_accuracy)
         assert.are.equal(2, r.runs[i].epochs)
         assert.are.equal('finished', r.runs[i].state)
      end
      -- the text: one line a differing key, the runs as columns
      rc, out, err = H.kbl('compare ' .. a .. ' ' .. b, dir)
      assert.are.equal(0, rc, err)
      local lines = {}
      for l in out:gmatch('([^\n]*)\n') do lines[#lines + 1] = l end
      assert.truthy(lines[1]:match('^%s+a%s+b$'), lines[1])
      assert.truthy(lines[2]:match('^model%.1%.units%s+16%s+8$'), lines[2])
      assert.truthy(lines[3]:match('^optimizer%.lr%s+0%.01%s+0%.003$'), lines[3])
      assert.truthy(out:find('\nval_loss ', 1, true), out)
      assert.is_nil(out:find('batch_size', 1, true))
   end)

   it('says when configs are the same', function()
      local rc, out = H.kbl('compare ' .. a .. ' ' .. a, dir)
      assert.are.equal(0, rc)
      assert.truthy(out:find('(the configs are the same)', 1, true), out)
   end)

   it('flattens configs through specs, positional arguments by name', function()
      local S = require 'kbl.config.spec'
      local cfg1 = require('kbl.config').load({cfg}, {no_validate = true})
      local flat = compare.flatten(cfg1)
      assert.are.equal('blocks.Sequential', flat.model)
      assert.are.equal('16', flat['model.1.units'])
      assert.are.equal('"relu"', flat['model.1.activation'])
      assert.are.equal('optim.Adam', flat.optimizer)
      assert.are.equal('{}', flat.callbacks)
      assert.is_true(S.is_spec(cfg1.model))
   end)

   it('takes a sweep directory for its runs, and names a directory that is neither', function()
      local sd = dir .. '/sweep'
      os.execute('mkdir -p ' .. sd .. ' && cp -r ' .. a .. ' ' .. sd .. '/1-x && cp -r ' .. b .. ' ' .. sd .. '/2-y')
      H.write(sd .. '/sweep.json', json.encode({runs = {{name = '1-x'}, {name = '2-y'}}}))
      local rc, out, err = H.kbl('compare --json ' .. sd, dir)
      assert.are.equal(0, rc, err)
      local r = json.decode(out)
      assert.are.same({'model.1.units', 'optimizer.lr'}, r.keys)
      assert.are.equal('1-x', r.runs[1].name)
      rc, _, err = H.kbl('compare ' .. dir, dir)
      assert.are.equal(1, rc)
      assert.truthy(err:find('is not a run directory (no config.lua) nor a sweep (no sweep.json)', 1, true), err)
   end)
end)
