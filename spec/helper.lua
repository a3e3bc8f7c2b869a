-- spec/helper.lua: loaded by busted before every spec file. Points kbl at the
-- build tree and provides the shared checks: closeness and the float64
-- finite-difference gradient check every differentiable op passes.
local build = os.getenv('KBL_BUILD_DIR') or 'build'
if not os.getenv('KBL_LIB') then
   local f = io.open(build .. '/libkbl.so')
   if f then
      f:close()
      -- kbl.lib honours KBL_LIB; setenv is not in plain Lua, so pass the path this way
      package.loaded['kbl.lib.path'] = build .. '/libkbl.so'
   end
end

local H = {}

local function flat(t)
   local kbl = require 'kbl'
   if type(t) == 'number' then return {t} end
   local l = kbl.reshape(t:contiguous(), {-1}):tolist()
   return l
end
H.flat = flat

-- Asserts tensors (or a tensor and a nested table) agree within tol.
function H.assert_close(actual, expected, tol, msg)
   local kbl = require 'kbl'
   tol = tol or 1e-5
   if type(expected) == 'table' and not kbl.is_tensor(expected) then
      expected = kbl.tensor(expected, {dtype = 'float64'})
   end
   if kbl.is_tensor(expected) and kbl.is_tensor(actual) then
      local sa, se = actual:size(), expected:size()
      assert(#sa == #se, (msg or '') .. ' rank differs: ' .. #sa .. ' vs ' .. #se)
      for i = 1, #sa do assert(sa[i] == se[i], (msg or '') .. ' shape differs in dim ' .. i) end
   end
   local a, e = flat(actual), flat(expected)
   assert(#a == #e, (msg or '') .. ' sizes differ')
   for i = 1, #a do
      local scale = math.max(1, math.abs(e[i]))
      -- equal values pass (infinities included), NaN matches only NaN, and a
      -- NaN on one side fails: its distance compares false with everything
      local close = a[i] == e[i] or math.abs(a[i] - e[i]) <= tol * scale
      local both_nan = a[i] ~= a[i] and e[i] ~= e[i]
      if not close and not both_nan then
         error(string.format('%s element %d: got %.10g, expected %.10g (tol %g)',
            msg or 'mismatch', i, a[i], e[i], tol), 2)
      end
   end
end

-- Float64 finite-difference gradient check.
-- fn(inputs...) returns a tensor; every input that is a float tensor with
-- requires_grad is checked. The scalar checked is sum(fn(...) * probe) with a
-- fixed random probe, so every output element counts.
function H.gradcheck(fn, inputs, opts)
   local kbl = require 'kbl'
   opts = opts or {}
   local eps, tol = opts.eps or 1e-6, opts.tol or 1e-5
   local out = fn(unpack(inputs))
   kbl.manual_seed(opts.seed or 1234)
   local probe = kbl.randn(out:size(), {dtype = 'float64'})
   local function objective()
      return kbl.no_grad(function() return (fn(unpack(inputs)) * probe):sum():item() end)
   end
   for _, x in ipairs(inputs) do
      if kbl.is_tensor(x) and x.requires_grad then x.grad = nil end
   end
   local y = fn(unpack(inputs))
   ;(y * probe):sum():backward()
   for k, x in ipairs(inputs) do
      if kbl.is_tensor(x) and x.requires_grad then
         assert(x.dtype == 'float64', 'gradcheck inputs must be float64')
         local g = x.grad
         assert(g, 'input ' .. k .. ' received no gradient')
         local gflat = flat(g)
         local xc = x:detach()
         local n = x:numel()
         local view = kbl.reshape(xc, {-1})
         assert(view:same_storage(xc) and xc:is_contiguous(), 'gradcheck inputs must be contiguous')
         for i = 1, n do
            local orig = view[i]
            view[i] = orig + eps
            local fp = objective()
            view[i] = orig - eps
            local fm = objective()
            view[i] = orig
            local num = (fp - fm) / (2 * eps)
            local d = math.abs(num - gflat[i])
            -- a NaN gradient, analytic or numeric, compares false and so fails
            local close = d <= tol * math.max(1, math.abs(num))
            if not close then
               error(string.format('gradcheck: input %d element %d: analytic %.10g, numeric %.10g',
                  k, i, gflat[i], num), 2)
            end
         end
      end
   end
   return true
end

-- A float64 tensor of the given shape that requires grad, from a seeded generator.
function H.leaf(shape, opts)
   local kbl = require 'kbl'
   opts = opts or {}
   local t = kbl.randn(shape, {dtype = 'float64'})
   if opts.positive then t = t:abs() + 0.5 end
   if opts.scale then t = t * opts.scale end
   t = t:detach():contiguous()
   if t.grad_fn then t = t:clone():detach() end
   t.requires_grad = true
   return t
end

-- Runs a shell command; returns its exit status and its output.
function H.run(cmd)
   local f = io.popen(cmd .. ' 2>&1; echo "__rc=$?"')
   local out = f:read('*a')
   f:close()
   local rc = tonumber(out:match('__rc=(%d+)%s*$'))
   return rc, (out:gsub('__rc=%d+%s*$', ''))
end

-- The GPU-dependent specs ask this; it names the spec in the skip message.
function H.cuda_available()
   local kbl = require 'kbl'
   return kbl.cuda.is_available()
end

-- ---- files and the command, for the specs that run kbl end to end ----------

-- A fresh temporary directory.
function H.tmpdir()
   local dir = os.tmpname()
   os.remove(dir)
   os.execute('mkdir -p ' .. dir)
   return dir
end

-- The bytes of a file, or nil when it cannot be opened.
H.read = require('kbl.io.fs').read

function H.write(path, text)
   local f = assert(io.open(path, 'wb'))
   f:write(text)
   f:close()
   return path
end

-- The names `ls -1` lists in a directory ({} when it is missing).
function H.ls(path)
   local names = {}
   local p = io.popen('ls -1 ' .. path .. ' 2>/dev/null')
   for n in p:lines() do names[#names + 1] = n end
   p:close()
   return names
end

-- The text of the small MLP config the CLI specs train: `extends = 'fit'` on
-- generated blobs (dim 4, 3 classes), Dense(units, relu) then Dense(3), Adam.
-- o sets name, epochs, n, validation, test, units, between (blocks placed
-- before the last Dense, ending in ', ') and extra (whole lines added last).
-- Specs gsub this text, so keep its layout.
function H.tiny_config(o)
   o = o or {}
   return string.format([[
return {
   extends = 'fit',
   name = '%s',
   epochs = %d,
   batch_size = 16,
   data = data.generated{kind = 'blobs', n = %d, validation = %d, test = %d, dim = 4, classes = 3, seed = 3},
   model = blocks.Sequential{blocks.Dense{units = %d, activation = 'relu'}, %sblocks.Dense{3}},
   optimizer = optim.Adam{lr = 0.01},
%s}
]], o.name or 'tiny', o.epochs or 2, o.n or 96, o.validation or 32, o.test or 32, o.units or 16,
      o.between or '', o.extra or '')
end

function H.exists(path)
   local f = io.open(path, 'rb')
   if f then f:close() end
   return f ~= nil
end

-- The raw bytes of a tensor's elements, for bit-for-bit comparisons.
function H.bytes(t)
   local kbl = require 'kbl'
   local c = t:contiguous()
   return require('ffi').string(c:data_ptr(), c:numel() * tonumber(kbl.lib.C.kbl_dtype_size(kbl.lib.dtypes[t.dtype])))
end

-- Runs `bin/kbl ARGS` against this build, its output kept in files under dir;
-- returns the exit status, stdout and stderr.
function H.kbl(args, dir)
   local out, err = dir .. '/stdout', dir .. '/stderr'
   local rc = os.execute('env KBL_BUILD_DIR=' .. build .. ' bin/kbl ' .. args .. ' >' .. out .. ' 2>' .. err)
   if type(rc) ~= 'number' then rc = rc and 0 or 1 end
   if rc > 255 then rc = math.floor(rc / 256) end
   return rc, H.read(out), H.read(err)
end

-- Whether /usr/bin/python3 can import a module (found by name, not imported,
-- so spec/python_deps_spec.lua sees no import of an optional package).
function H.python_has(module)
   return H.run("/usr/bin/python3 -c \"import importlib.util, sys; sys.exit(importlib.util.find_spec('"
      .. module .. "') is None)\"") == 0
end

-- The test virtual environment of scripts/setup.sh (PyPI-only packages:
-- tensorboard, onnxruntime): $KBL_VENV, else /opt/kbl-venv.
H.VENV = os.getenv('KBL_VENV') or '/opt/kbl-venv'

-- The venv's python when it can import module; else nil and a reason for pending().
function H.venv_python(module)
   local py = H.VENV .. '/bin/python3'
   local ok = H.run('test -x ' .. py .. ' && ' .. py .. " -c \"import importlib.util, sys; "
      .. "sys.exit(importlib.util.find_spec('" .. module .. "') is None)\"") == 0
   if ok then return py end
   return nil, string.format('skipped: the Python module %s is not installed in %s (run scripts/setup.sh)',
      module, H.VENV)
end

-- The last epoch line of a run directory's metrics.jsonl (not the test line).
function H.last_epoch(run_dir)
   local json = require 'dkjson'
   local last
   for line in (H.read(run_dir .. '/metrics.jsonl') or ''):gmatch('[^\n]+') do
      local o = json.decode(line)
      if o.split == nil then last = o end
   end
   return last
end

-- metrics.jsonl's lines without the timings, which differ from run to run:
-- the epoch lines, the test split's line (split = 'test') and all lines in order.
function H.metrics(run_dir)
   local json = require 'dkjson'
   local epochs, test, all = {}, nil, {}
   for line in (H.read(run_dir .. '/metrics.jsonl') or ''):gmatch('[^\n]+') do
      local o = json.decode(line)
      for k in pairs(o) do if k == 'time' or k == 'samples_per_sec' or k:match('^time_') then o[k] = nil end end
      if o.split then test = o else epochs[#epochs + 1] = o end
      all[#all + 1] = o
   end
   return epochs, test, all
end

return H
