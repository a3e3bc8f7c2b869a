-- bench/onnx_infer.lua — inference throughput of the Fashion-MNIST CNN
-- (lua/kbl/configs/fashion_mnist_cnn.lua: uint8 input, Normalize, ConvNet {32, 64}
-- with two convs a stage, head with a hidden layer, softmax), kbl's
-- model:predict against onnxruntime on the file kbl exports, at batch 1 and
-- 256, in one run, at the same thread count (kbl's; OMP_NUM_THREADS for
-- onnxruntime's intra-op pool). Weights are the fresh initialization: the
-- time does not depend on their values. Prints images/s for each and the ratio.
-- BENCH_CLOCK=cpu: CPU seconds at one thread on both sides (a busy machine).
--   bin/kbl bench/onnx_infer.lua        (onnxruntime from the test venv of scripts/setup.sh)
local kbl = require 'kbl'
local json = require 'dkjson'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local timing = dofile(here .. '/timing.lua')
local root = here .. '/..'
local VENV = os.getenv('KBL_VENV') or '/opt/kbl-venv'
local PY = VENV .. '/bin/python3'

local cfg = require('kbl.config').load({'fashion_mnist_cnn'})
local trainer = require('kbl.config.experiment').trainer(cfg, {quiet = true})
trainer:build()
local model = trainer.model
model:eval()
local src = trainer.source:split('test')
local batches = src:batch(256)
local x = kbl.keep(batches:iter()().x:clone())
if batches.close then batches:close() end
local dir = os.tmpname()
os.remove(dir)
os.execute('mkdir -p ' .. dir)
local onnx_file, x_file = dir .. '/cnn.onnx', dir .. '/x.npy'
model:export(onnx_file, {example_input = x:narrow(1, 1, 1)})
require('kbl.io.npy').save(x_file, x)

if timing.cpu then kbl.set_num_threads(1) end
local threads = kbl.get_num_threads()
local SCRIPT = root .. '/spec/fixtures/onnx_check.py'   -- the ONNX side, shared with the spec
local have_ort = os.execute(PY .. ' -c "import onnxruntime" 2>/dev/null') == 0 and io.open(SCRIPT) ~= nil
local ort_note = have_ort and ('onnxruntime from ' .. VENV)
   or ('onnxruntime not installed in ' .. VENV .. ' (run scripts/setup.sh)')
print(string.format('CNN inference, %s, %d threads, images as uint8 [N, 1, 28, 28]; %s',
   timing.cpu and 'CPU time' or 'wall time', threads, ort_note))
print(string.format('%-6s %14s %18s %8s', 'batch', 'kbl images/s', 'onnxruntime img/s', 'kbl/ort'))
for _, bs in ipairs{1, 256} do
   local xb = x:narrow(1, 1, bs):contiguous()
   local iters = bs == 1 and 200 or 5
   local secs = timing.time(function() kbl.scope(function() model:predict(xb) end) end,
      {warmup = 3, trials = 5, iters = iters})
   local kbl_ips = bs / secs
   local ort_ips = 0 / 0
   if have_ort then
      local p = io.popen(string.format('OMP_NUM_THREADS=%d %s %s bench %s %s %d %d', threads, PY, SCRIPT,
         onnx_file, x_file, bs, iters))
      local out = p:read('*a')
      p:close()
      local r = json.decode(out:match('{.*}') or '{}')
      ort_ips = r and r.seconds_per_call and bs / r.seconds_per_call or 0 / 0
   end
   print(string.format('%-6d %14.0f %18.0f %8.2f', bs, kbl_ips, ort_ips, kbl_ips / ort_ips))
end
os.execute('rm -rf ' .. dir)
