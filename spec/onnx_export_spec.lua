-- spec/onnx_export_spec.lua: ONNX export (kbl/onnx/): the protobuf writer and
-- reader, every block type's ONNX form (outputs of kbl's own ONNX runtime and,
-- where the test venv has it, onnxruntime's, against the model's predict), the
-- file passing onnx.checker (Debian's python3-onnx), errors for blocks that
-- cannot be exported, and `kbl export` of the three Fashion-MNIST examples,
-- each trained for a few steps: on the first 1000 test images onnxruntime's
-- outputs equal kbl's within 1e-5 and give the same accuracy.
local H = require 'helper'
local kbl = require 'kbl'
local blocks = require 'kbl.blocks'
local npy = require 'kbl.io.npy'
local wire = require 'kbl.onnx.wire'
local format = require 'kbl.onnx.format'
local runtime = require 'kbl.onnx.runtime'
local json = require 'dkjson'

local dir = H.tmpdir()
local CHECK = 'spec/fixtures/onnx_check.py'
local ORT, ORT_WHY = H.venv_python('onnxruntime')
local HAS_ONNX = H.python_has('onnx')
local ONNX_WHY = 'skipped: the Python module onnx (Debian python3-onnx) is not installed (run scripts/setup.sh)'
local FMNIST = '/usr/share/datasets/fashion-mnist'

local function max_diff(a, b) return (a:to('float64') - b:to('float64')):abs():max():item() end

-- onnx.checker's verdict and the file's summary (asserts it passes).
local function checker(path)
   local rc, out = H.run('/usr/bin/python3 ' .. CHECK .. ' check ' .. path)
   assert(rc == 0, 'onnx.checker failed on ' .. path .. ':\n' .. out)
   return json.decode(out:match('{.*}'))
end

-- onnxruntime's output for x.
local n_ort = 0
local function ort_run(path, x)
   n_ort = n_ort + 1
   local xp, yp = string.format('%s/x%d.npy', dir, n_ort), string.format('%s/y%d.npy', dir, n_ort)
   npy.save(xp, x)
   local rc, out = H.run(ORT .. ' ' .. CHECK .. ' run ' .. path .. ' ' .. xp .. ' ' .. yp)
   assert(rc == 0, 'onnxruntime failed on ' .. path .. ':\n' .. out)
   return npy.load(yp)
end

-- Exports model for x and compares kbl's runtime (and onnxruntime, when
-- there) with model:predict(x) within tol; returns the file's path.
local n_files = 0
local function roundtrip(model, x, tol)
   tol = tol or 1e-5
   n_files = n_files + 1
   local path = string.format('%s/m%d.onnx', dir, n_files)
   local y = model:predict(x)
   model:export(path, {example_input = x})
   local mine = runtime.load(path):run(x)
   local d = max_diff(mine, y)
   assert(d <= tol, 'kbl runtime differs by ' .. d)
   if HAS_ONNX then checker(path) end
   if ORT then
      local theirs = ort_run(path, x)
      assert.same(y:size(), theirs:size())
      d = max_diff(theirs, y)
      assert(d <= tol, 'onnxruntime differs by ' .. d)
   end
   return path
end

-- Gives a built model's batch norms running statistics that are not 0 and 1.
local function randomize_stats(m)
   m:walk(function(b)
      if b.type_name == 'BatchNorm' then
         b._p.running_mean:copy_(kbl.randn(b._p.running_mean:size()) * 0.3)
         b._p.running_var:copy_(kbl.rand(b._p.running_var:size()) + 0.5)
         if b._p.weight then b._p.weight:copy_(kbl.rand(b._p.weight:size()) + 0.5) end
      end
   end)
end

describe('onnx wire format', function()
   it('writes and reads varints (negative ones as ten bytes), strings and floats', function()
      for _, n in ipairs{0, 1, 127, 128, 300, 2 ^ 40, -1, -17} do
         local v, pos = wire.read_varint(wire.varint(n), 1)
         assert.equal(n, v)
         assert.equal(#wire.varint(n) + 1, pos)
      end
      assert.equal(10, #wire.varint(-1))
      local s = wire.writer():varint(1, 5):bytes(2, 'abc'):float(3, 0.5):finish()
      local got = {}
      for f, wt, v in wire.fields(s) do got[#got + 1] = {f, wt, v} end
      assert.same({{1, 0, 5}, {2, 2, 'abc'}, {3, 5, 0.5}}, got)
   end)

   it('refuses truncated input with the byte', function()
      local s = wire.writer():bytes(2, 'abcdef'):finish()
      assert.has_error(function() for _ in wire.fields(s:sub(1, 4)) do end end,
         'onnx: malformed protobuf (length past the end at byte 3)')
   end)

   it('decodes what it encodes', function()
      local m = {ir_version = 8, opsets = {{domain = '', version = 17}}, producer_name = 'kbl',
         metadata = {{'k', 'v'}}, graph = {name = 'g',
            nodes = {{op_type = 'Flatten', name = 'f', inputs = {'input'}, outputs = {'output'},
               attributes = {{name = 'axis', type = 'int', value = -1}, {name = 'alpha', type = 'float', value = 0.25},
                  {name = 'pads', type = 'ints', value = {0, 1, 2, 3}}}}},
            initializers = {{name = 'w', dtype = 'int64', dims = {2}, raw = string.rep('\0', 16)}},
            inputs = {{name = 'input', dtype = 'uint8', shape = {'N', 1, 28, 28}}},
            outputs = {{name = 'output', dtype = 'float32', shape = {'N', 784}}}}}
      local back = format.decode(format.encode(m))
      assert.same(m.graph.nodes[1].attributes, back.graph.nodes[1].attributes)
      assert.same(m.graph.inputs, back.graph.inputs)
      assert.same(m.graph.initializers, back.graph.initializers)
      assert.same(m.metadata, back.metadata)
      assert.same(m.opsets, back.opsets)
   end)
end)

describe('onnx export of every block type', function()
   if not ORT then print(ORT_WHY .. ' (outputs checked with kbl\'s own runtime only)') end
   if not HAS_ONNX then print(ONNX_WHY) end

   it('convolutions, pools, norms, residuals and branches (uint8 input normalized per channel)', function()
      kbl.manual_seed(3)
      local m = blocks.Model{
         preprocess = blocks.Normalize{mean = {0.4, 0.5, 0.6}, std = {0.2, 0.25, 0.3}, scale = 1 / 255},
         backbone = blocks.Sequential{
            blocks.Conv2D{6, 3, padding = 'same', activation = 'relu'},
            blocks.Conv2D{6, 4, padding = 'same', use_bias = false},            -- asymmetric 'same' pads
            blocks.BatchNorm{},
            blocks.DepthwiseConv2D{3, padding = 1, depth_multiplier = 2, activation = 'silu'},
            blocks.GroupNorm{3},
            blocks.MaxPool2D{2},
            blocks.Conv2DTranspose{4, 3, stride = 2, padding = 1, output_padding = 1, activation = 'elu'},
            blocks.AvgPool2D{3, stride = 2, padding = 1, count_include_pad = false},
            blocks.Residual{blocks.Conv2D{4, 3, padding = 1}, blocks.BatchNorm{}, activation = 'relu'},
            blocks.Residual{blocks.Conv2D{8, 3, stride = 2, padding = 1}},      -- automatic 1x1 projection
            blocks.Branches{blocks.Conv2D{3, 1}, blocks.Conv2D{5, 3, padding = 1}},   -- concat on channels
            blocks.Branches{blocks.Identity{}, blocks.Conv2D{8, 1}, join = 'add'},
            blocks.Dropout{0.5, spatial = true},
         },
         neck = blocks.Sequential{blocks.GlobalAvgPool2D{}, blocks.LayerNorm{}},
         head = blocks.ClassificationHead{num_classes = 5, hidden = {12}, activation = 'gelu', dropout = 0.2},
         postprocess = blocks.Activation{'log_softmax'},
      }
      local x = kbl.randint(0, 256, {3, 3, 12, 12}):to('uint8')
      m:predict(x)
      randomize_stats(m)
      roundtrip(m, x)
   end)

   it('dense layers on 3-D input, reshape, flatten from dim 3, stack, mul and every activation', function()
      kbl.manual_seed(4)
      local acts = {}
      for _, a in ipairs{'relu', 'leaky_relu', 'elu', 'gelu', 'gelu_tanh', 'sigmoid', 'tanh', 'softplus', 'silu',
         'swish', 'softmax', 'log_softmax', 'linear'} do
         acts[#acts + 1] = blocks.Dense{6, activation = a}
      end
      local m = blocks.Model{
         backbone = blocks.Sequential{
            blocks.Reshape{{2, 3, 8}},
            blocks.Flatten{3},                                  -- [N, 2, 24]
            blocks.Dense{6},                                    -- MatMul + Add on [N, 2, 24]
            blocks.LayerNorm{dims = 2},
            blocks.Branches{blocks.Dense{6, activation = 'tanh'}, blocks.Identity{}, join = 'stack', dim = 2},
            blocks.Flatten{},
            blocks.Dense{6},
            blocks.Branches{blocks.Dense{6}, blocks.Dense{6, activation = 'sigmoid'}, join = 'mul'},
            blocks.Sequential(acts),
            blocks.BatchNorm{},                                 -- on [N, C]
         },
         head = blocks.RegressionHead{outputs = 2},
      }
      local x = kbl.randn(4, 48)
      m:predict(x)
      randomize_stats(m)
      roundtrip(m, x)
   end)

   it('embedding (indices from 1 in kbl, from 0 in ONNX)', function()
      kbl.manual_seed(5)
      local m = blocks.Model{backbone = blocks.Sequential{blocks.Embedding{20, 4}, blocks.Flatten{}},
         head = blocks.Dense{3}}
      local idx = kbl.randint(1, 21, {6, 5})
      roundtrip(m, idx)
   end)

   it('ResNet and ConvNet (average pooling, spatial dropout), exported before any call built them', function()
      kbl.manual_seed(7)
      local m = blocks.Model{backbone = blocks.Sequential{blocks.ResNet{filters = {4, 8}, blocks = 1},
         blocks.ConvNet{filters = {6}, pool = 'avg', dropout = 0.1}}, head = blocks.ClassificationHead{3}}
      local x = kbl.randn(2, 3, 16, 16)
      local path = dir .. '/unbuilt.onnx'
      m:export(path, {example_input = x})
      assert(max_diff(runtime.load(path):run(x), m:predict(x)) <= 1e-5)
      randomize_stats(m)
      roundtrip(m, x)
   end)

   it('has an ONNX form for every block type of the library but Lambda', function()
      local exporters = require('kbl.onnx.blocks').EXPORT
      for _, t in ipairs(blocks.types) do
         if t ~= 'Lambda' then assert.is_function(exporters[t], 'no exporter for blocks.' .. t) end
      end
   end)

   it('records a dynamic batch dim: a file made with 2 rows runs on 7', function()
      kbl.manual_seed(6)
      local m = blocks.Model{backbone = blocks.ConvNet{filters = {4}}, head = blocks.ClassificationHead{3}}
      local path = roundtrip(m, kbl.randn(2, 1, 8, 8))
      local x7 = kbl.randn(7, 1, 8, 8)
      local y = m:predict(x7)
      assert(max_diff(runtime.load(path):run(x7), y) <= 1e-5)
      if ORT then assert(max_diff(ort_run(path, x7), y) <= 1e-5) end
      assert.same({'N', 1, 8, 8}, runtime.load(path).input.shape)
   end)
end)

describe('onnx export errors', function()
   it('names a block that cannot be exported and its path', function()
      local m = blocks.Model{backbone = blocks.Sequential{blocks.Dense{4}, blocks.Lambda{function(t) return t * 2 end}},
         head = blocks.Dense{2}}
      local x = kbl.randn(2, 3)
      m:predict(x)
      local ok, err = pcall(m.export, m, dir .. '/bad.onnx', {example_input = x})
      assert.is_false(ok)
      assert.matches("blocks.Lambda at 'backbone.2' cannot be exported: it runs a Lua function", err, 1, true)
      assert.is_false(H.exists(dir .. '/bad.onnx'))
   end)

   it('names an activation given as a Lua function, a list join and a type with no exporter', function()
      local x = kbl.randn(2, 3)
      local m1 = blocks.Model{backbone = blocks.Dense{4, activation = function(t) return t end}}
      local ok, err = pcall(m1.export, m1, dir .. '/bad.onnx', {example_input = x})
      assert.is_false(ok)
      assert.matches("blocks.Dense at 'backbone' cannot be exported: its activation is a Lua function", err, 1, true)
      local m2 = blocks.Model{backbone = blocks.Branches{blocks.Dense{2}, blocks.Dense{2}, join = 'list'}}
      ok, err = pcall(m2.export, m2, dir .. '/bad.onnx', {example_input = x})
      assert.is_false(ok)
      assert.matches("join = 'list'", err, 1, true)
      local Custom = blocks.Block.extend('OnnxSpecCustom', {})
      local m3 = blocks.Model{backbone = Custom{}}
      ok, err = pcall(m3.export, m3, dir .. '/bad.onnx', {example_input = x})
      assert.is_false(ok)
      assert.matches("blocks.OnnxSpecCustom at 'backbone' cannot be exported: kbl has no ONNX form", err, 1, true)
   end)

   it('asks for an example input', function()
      local m = blocks.Model{backbone = blocks.Dense{4}}
      local ok, err = pcall(m.export, m, dir .. '/bad.onnx', {})
      assert.is_false(ok)
      assert.matches('give {example_input = tensor}', err, 1, true)
   end)
end)

describe('kbl export', function()
   it('exports any block a run trains and warns that the config\'s transforms stay outside the model', function()
      H.write(dir .. '/tiny.lua', [[
return {
   extends = 'fit', name = 'tiny', epochs = 1, batch_size = 16,
   data = data.generated{kind = 'blobs', n = 64, validation = 16, test = 16, dim = 4, classes = 3, seed = 3},
   transforms = {{'normalize', {mean = 0.5, std = 2}}},
   model = blocks.Sequential{blocks.Dense{8, activation = 'relu'}, blocks.Dense{3}},
}
]])
      local run = dir .. '/tiny_run'
      local rc, out, err = H.kbl('run ' .. dir .. '/tiny.lua --run-dir ' .. run .. ' --quiet', dir)
      assert(rc == 0, tostring(out) .. tostring(err))
      rc, out, err = H.kbl('export ' .. run .. ' -o ' .. dir .. '/tiny.onnx', dir)
      assert(rc == 0, tostring(err))
      assert.matches('input float32 [N, 4]', out, 1, true)
      assert.matches("config has transforms (normalize ...), which run in the data pipeline", err, 1, true)
      local x = kbl.randn(5, 4)
      local y = require('kbl.onnx.run_model').predict(kbl.load_run(run), x)
      assert(max_diff(runtime.load(dir .. '/tiny.onnx'):run(x), y) <= 1e-5)
      npy.save(dir .. '/tiny_x.npy', x)
      rc, out, err = H.kbl('predict ' .. run .. ' --input ' .. dir .. '/tiny_x.npy --json', dir)
      assert(rc == 0, tostring(err))
      assert.equal(5, #json.decode(out))
   end)

   it('names a directory that is not a run', function()
      local rc, _, err = H.kbl('export ' .. dir .. ' -o ' .. dir .. '/x.onnx', dir)
      assert.equal(1, rc)
      assert.matches('is not a run directory: it has no config.lua', err, 1, true)
   end)
end)

-- `kbl export` of each example, trained for a few steps.
describe('kbl export of the Fashion-MNIST examples', function()
   if not H.exists(FMNIST .. '/t10k-images-idx3-ubyte.gz') and not H.exists(FMNIST .. '/t10k-images-idx3-ubyte') then
      pending('skipped: dataset-fashion-mnist is not installed')
      return
   end
   local idx = require 'kbl.data.idx'
   local function first(name)
      for _, s in ipairs{'', '.gz'} do
         if H.exists(FMNIST .. '/' .. name .. s) then return FMNIST .. '/' .. name .. s end
      end
   end
   local images = idx.read(first('t10k-images-idx3-ubyte')):narrow(1, 1, 1000):contiguous():view(1000, 1, 28, 28)
   local labels = idx.read(first('t10k-labels-idx1-ubyte'), {labels = true, num_classes = 10}):narrow(1, 1, 1000)

   local function accuracy(y) return kbl.eq(y:argmax(2), labels):double():mean():item() end

   local RUNS = {
      {'fashion_mnist_mlp', '--set epochs=1 --set steps_per_epoch=30'},
      {'fashion_mnist_cnn', '--set epochs=1 --set steps_per_epoch=10'},
      {'backbone_neck_head', "--set 'stages={{epochs = 1}, {epochs = 1, freeze = \"backbone\", lr = 2e-4}}' "
         .. '--set steps_per_epoch=10'},
   }
   for _, r in ipairs(RUNS) do
      it(r[1] .. ': checker passes, metadata, onnxruntime equals kbl within 1e-5 on 1000 test images', function()
         local run = dir .. '/' .. r[1]
         local rc, out, err = H.kbl(string.format('run examples/%s.lua %s --set validation_steps=1 '
            .. '--set test_split=false --run-dir %s --quiet', r[1], r[2], run), dir)
         assert(rc == 0, tostring(out) .. tostring(err))
         local file = run .. '/model.onnx'
         rc, out, err = H.kbl('export ' .. run .. ' -o ' .. file, dir)
         assert(rc == 0, tostring(err))
         assert.matches('input uint8 [N, 1, 28, 28]', out, 1, true)
         local model = kbl.load_run(run)
         local y = model:predict(images)
         local rt = runtime.load(file)
         assert.equal('uint8', rt.input.dtype)
         assert.same(json.decode(rt.metadata.class_names), require('kbl.data').fashion_mnist{}.meta.class_names)
         assert.matches('^%x+$', rt.metadata.config_hash)
         assert(max_diff(rt:run(images), y) <= 1e-5)
         if HAS_ONNX then
            local info = checker(file)
            assert(info.opset[1] >= 13)
            assert.equal('N', info.batch_dim)
            assert.same({'input'}, info.inputs)
            assert.equal(rt.metadata.config_hash, info.metadata.config_hash)
         end
         if not ORT then
            pending(ORT_WHY)
            return
         end
         local theirs = ort_run(file, images)
         local d = max_diff(theirs, y)
         assert(d <= 1e-5, r[1] .. ': onnxruntime differs from kbl by ' .. d)
         assert.equal(accuracy(y), accuracy(theirs))
      end)
   end
end)
