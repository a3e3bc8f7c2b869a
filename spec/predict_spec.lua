-- spec/predict_spec.lua: `kbl predict RUN_DIR|model.onnx --input FILE` on the
-- Fashion-MNIST MLP example (trained for a few steps): on the test split's IDX
-- file it reproduces `kbl eval`'s accuracy exactly, from the run directory and
-- from the exported ONNX file (run by kbl's own runtime); .npy, CSV and PNG
-- inputs of the same images give the same outputs; --json names the classes;
-- --batch does not change the results; bad input (a missing file, a wrong
-- dtype or shape, an ONNX operator kbl does not run) is a clear error.
local H = require 'helper'
local kbl = require 'kbl'
local npy = require 'kbl.io.npy'
local json = require 'dkjson'

local FMNIST = '/usr/share/datasets/fashion-mnist'
local function dataset_file(name)
   for _, s in ipairs{'', '.gz'} do
      if H.exists(FMNIST .. '/' .. name .. s) then return FMNIST .. '/' .. name .. s end
   end
end

describe('kbl predict', function()
   local images_file, labels_file = dataset_file('t10k-images-idx3-ubyte'), dataset_file('t10k-labels-idx1-ubyte')
   if not images_file then
      pending('skipped: dataset-fashion-mnist is not installed')
      return
   end
   local dir = H.tmpdir()
   local run = dir .. '/mlp'
   local onnx_file = run .. '/model.onnx'
   local labels = require('kbl.data.idx').read(labels_file, {labels = true, num_classes = 10})
   local images = require('kbl.data.idx').read(images_file)

   local function accuracy(y) return kbl.eq(y:argmax(2), labels:narrow(1, 1, y:size(1))):double():mean():item() end
   local function predict(args)
      local rc, out, err = H.kbl('predict ' .. args, dir)
      return rc, out, err
   end
   local function outputs(model, input, extra)
      local file = dir .. '/out.npy'
      os.remove(file)
      local rc, _, err = predict(model .. ' --input ' .. input .. ' --output ' .. file .. ' ' .. (extra or ''))
      assert(rc == 0, tostring(err))
      return npy.load(file)
   end

   setup(function()
      local rc, out, err = H.kbl('run examples/fashion_mnist_mlp.lua --set epochs=1 --set steps_per_epoch=30 '
         .. '--set validation_steps=1 --set test_split=false --run-dir ' .. run .. ' --quiet', dir)
      assert(rc == 0, tostring(out) .. tostring(err))
      rc, out, err = H.kbl('export ' .. run .. ' -o ' .. onnx_file, dir)
      assert(rc == 0, tostring(out) .. tostring(err))
   end)

   it("reproduces kbl eval's test accuracy exactly, from the run directory and from model.onnx", function()
      local rc, out, err = H.kbl('eval ' .. run .. ' --split test --json', dir)
      assert(rc == 0, tostring(err))
      local eval_acc = json.decode(out).accuracy
      local y = outputs(run, images_file)
      assert.same({10000, 10}, y:size())
      -- the same number of the 10000 right (eval's accuracy went through JSON)
      local function correct(acc) return math.floor(acc * 10000 + 0.5) end
      assert.equal(correct(eval_acc), correct(accuracy(y)))
      local y2 = outputs(onnx_file, images_file)
      assert.equal(correct(eval_acc), correct(accuracy(y2)))
      assert((y2 - y):abs():max():item() <= 1e-5)
      -- postprocess (softmax) ran: rows are probabilities
      H.assert_close(y:sum(2), kbl.ones(10000), 1e-5)
   end)

   it('reads .npy, CSV and PNG inputs of the same images alike; --batch changes nothing', function()
      local three = images:narrow(1, 1, 3):contiguous()
      npy.save(dir .. '/three.npy', three)
      local ref = outputs(run, dir .. '/three.npy')
      local rows = {}
      for i = 1, 3 do rows[i] = table.concat(three[i]:reshape{784}:to('int64'):tolist(), ',') end
      local cols = {}
      for i = 1, 784 do cols[i] = 'p' .. i end
      H.write(dir .. '/three.csv', table.concat(cols, ',') .. '\n' .. table.concat(rows, '\n') .. '\n')
      H.assert_close(outputs(onnx_file, dir .. '/three.csv'), ref, 1e-5)
      local C = kbl.lib.C
      for i = 1, 2 do
         local img = require('kbl.tensor').live(three[i]:contiguous())
         assert.equal(0, C.kbl_data_image_write(dir .. '/img' .. i .. '.png', img))
      end
      H.assert_close(outputs(run, dir .. '/img1.png --input ' .. dir .. '/img2.png'), ref:narrow(1, 1, 2), 1e-6)
      H.assert_close(outputs(run, dir .. '/three.npy', '--batch 1'), ref, 1e-5)
   end)

   it('classifies the PNG files `kbl data export` writes of the raw (uint8) test split as the IDX rows', function()
      local rc, _, err = H.kbl('data export examples/fashion_mnist_mlp.lua --split test --limit 3 --out ' .. dir
         .. '/pngs', dir)
      assert(rc == 0, tostring(err))
      npy.save(dir .. '/first3.npy', images:narrow(1, 1, 3):contiguous())
      local ref = outputs(onnx_file, dir .. '/first3.npy')
      local names = require('kbl.data').fashion_mnist{}.meta.class_names
      for i = 1, 3 do
         local png = string.format("'%s/pngs/%s/%d.png'", dir, names[labels[i]], i)
         H.assert_close(outputs(onnx_file, png), ref:narrow(1, i, 1), 1e-6)
      end
   end)

   it('prints a line a row with the class and its name, or JSON', function()
      npy.save(dir .. '/two.npy', images:narrow(1, 1, 2):contiguous())
      local rc, out, err = predict(onnx_file .. ' --input ' .. dir .. '/two.npy --json')
      assert(rc == 0, tostring(err))
      local rows = json.decode(out)
      assert.equal(2, #rows)
      local names = require('kbl.data').fashion_mnist{}.meta.class_names
      for i, r in ipairs(rows) do
         assert.equal(i, r.index)
         assert.equal(names[r.class], r.name)
         assert.equal(10, #r.output)
      end
      rc, out = predict(run .. ' --input ' .. dir .. '/two.npy')
      assert.equal(0, rc)
      assert.matches('^1\t%d+\t[^\t]+\t[%d%.e%-]+\n2\t', out)
      assert.matches('2 rows in', err or '', 1, true)
   end)

   it('says what is wrong with bad input', function()
      local cases = {
         {run .. ' --input ' .. dir .. '/nope.npy', 'input ' .. dir .. '/nope.npy: no such file'},
         {dir .. '/nothing --input x.npy', 'cannot open ' .. dir .. '/nothing'},
      }
      npy.save(dir .. '/float.npy', kbl.rand(2, 1, 28, 28))
      cases[#cases + 1] = {run .. ' --input ' .. dir .. '/float.npy',
         'holds float32 values; the model takes uint8 [N, 1, 28, 28]'}
      npy.save(dir .. '/short.npy', kbl.zeros({3, 10}, {dtype = 'uint8'}))
      cases[#cases + 1] = {onnx_file .. ' --input ' .. dir .. '/short.npy',
         "shape [3, 10] does not fit the model's input [N, 1, 28, 28]"}
      H.write(dir .. '/frac.csv', (('0.5,'):rep(783) .. '1\n'):rep(2))
      cases[#cases + 1] = {run .. ' --input ' .. dir .. '/frac.csv', 'the model takes uint8 values'}
      H.write(dir .. '/junk.bin', 'not a tensor file')
      cases[#cases + 1] = {run .. ' --input ' .. dir .. '/junk.bin', 'not a .npy, .csv or image file, and not IDX'}
      -- an ONNX file with an operator kbl does not write
      local format = require 'kbl.onnx.format'
      H.write(dir .. '/other.onnx', format.encode{opsets = {{version = 17}}, graph = {
         nodes = {{op_type = 'HardSwish', name = 'hs', inputs = {'input'}, outputs = {'output'}}}, initializers = {},
         inputs = {{name = 'input', dtype = 'float32', shape = {'N', 4}}},
         outputs = {{name = 'output', dtype = 'float32', shape = {'N', 4}}}}})
      cases[#cases + 1] = {dir .. '/other.onnx --input ' .. dir .. '/short.npy',
         "operator HardSwish (node 'hs') is not one kbl runs"}
      H.write(dir .. '/garbage.onnx', '\255\255\255')
      cases[#cases + 1] = {dir .. '/garbage.onnx --input ' .. dir .. '/short.npy', 'malformed protobuf'}
      for _, c in ipairs(cases) do
         local rc, _, err = predict(c[1])
         assert.equal(1, rc, c[1])
         assert.matches(c[2], err, 1, true)
         assert.equal(1, select(2, err:gsub('\n', '')))   -- one line
      end
   end)
end)
