-- spec/config_spec.lua: experiment configs (kbl.config): composition of files
-- and --set overrides, deep merge, specs built only when the run starts,
-- defaults by type, references, stages, printing the config back as Lua, and
-- each bad-config case with its exact message.
local config = require 'kbl.config'
local S = require 'kbl.config.spec'
local lines = require 'kbl.config.lines'

local dir = os.tmpname()
os.remove(dir)
os.execute('mkdir -p ' .. dir)

local function write(name, text)
   local path = dir .. '/' .. name
   local f = assert(io.open(path, 'w'))
   f:write(text)
   f:close()
   return path
end

local function H_exists(path)
   local f = io.open(path, 'rb')
   if f then f:close() end
   return f ~= nil
end

local function load_err(files, opts)
   local ok, err = pcall(config.load, files, opts)
   assert.is_false(ok, 'expected an error')
   return err
end

write('base.lua', [[
return {
   seed = 1,
   epochs = 3,
   batch_size = 32,
   optimizer = optim.Adam{lr = 1e-3, betas = {0.9, 0.999}},
   model = blocks.MLP{units = {64, 64}, activation = 'relu'},
   metrics = {metrics.Accuracy{}},
}
]])
write('wide.lua', [[
return {
   extends = 'base',
   model = {units = {256}},
   optimizer = {lr = 3e-4},
}
]])

describe('config composition', function()
   it('a config constructs specs, not objects', function()
      local cfg = config.load({dir .. '/base.lua'})
      assert.is_true(S.is_spec(cfg.model))
      assert.equal('blocks.MLP', cfg.model.type)
      assert.same({64, 64}, cfg.model.args[1].units)
      assert.equal('base', cfg.name)
   end)

   it('extends, deep merges maps and spec arguments, and replaces lists', function()
      local cfg = config.load({dir .. '/wide.lua'})
      assert.equal('optim.Adam', cfg.optimizer.type)
      assert.equal(3e-4, cfg.optimizer.args[1].lr)
      assert.same({0.9, 0.999}, cfg.optimizer.args[1].betas)   -- kept from base
      assert.same({256}, cfg.model.args[1].units)              -- a list replaces
      assert.equal('relu', cfg.model.args[1].activation)
      assert.equal(3, cfg.epochs)
   end)

   it('later files and --set override earlier ones', function()
      local over = write('over.lua', 'return {epochs = 5, optimizer = optim.SGD{lr = 0.1}}')
      local cfg = config.load({dir .. '/base.lua', over},
         {set = {'optimizer.momentum=0.9', 'model.units={8, 8, 8}', "device='cuda'", 'batch_size=64'}})
      assert.equal(5, cfg.epochs)
      assert.equal('optim.SGD', cfg.optimizer.type)            -- another type replaces the spec
      assert.same({lr = 0.1, momentum = 0.9}, cfg.optimizer.args[1])
      assert.same({8, 8, 8}, cfg.model.args[1].units)
      assert.equal('cuda', cfg.device)
      assert.equal(64, cfg.batch_size)
   end)

   it('--set takes specs and bare words', function()
      local cfg = config.load({dir .. '/base.lua'}, {set = {'optimizer=optim.RMSprop{lr = 0.01}', 'device=cpu'}})
      assert.equal('optim.RMSprop', cfg.optimizer.type)
      assert.equal('cpu', cfg.device)
   end)

   it('finds bare names in lua/kbl/configs', function()
      local cfg = config.load({'fit'})
      assert.equal('fit', cfg.name)
      assert.is_true(S.is_spec(cfg.optimizer))
      assert.equal('losses.CrossEntropy', cfg.loss.type)
   end)

   it('records the file and line of every key', function()
      local _, origins = config.load({dir .. '/wide.lua'}, {set = {'epochs=4'}})
      assert.equal(dir .. '/wide.lua:4', origins['optimizer.lr'])
      assert.equal(dir .. '/base.lua:4', origins.batch_size)
      assert.equal('--set epochs=4', origins.epochs)
   end)
end)

describe('config lines', function()
   it('maps key paths to lines through specs and positional items', function()
      local t = lines.key_lines([[
return {
   name = 'x',  -- {
   model = blocks.Sequential{
      blocks.Flatten{},
      blocks.Dense{units = 8,
         activation = 'relu'},
   },
   cb = {callbacks.LambdaCallback{on_epoch_end = function(a, b) local c, d = 1, {2} end}},
   ['defaults'] = {['blocks.Dense'] = {kernel_init = 'zeros'}},
   after = [[a
b]] .. ']]' .. [[,
   last = 1,
}
]])
      assert.equal(2, t.name)
      assert.equal(3, t.model)
      assert.equal(4, t['model.1'])
      assert.equal(5, t['model.2.units'])
      assert.equal(6, t['model.2.activation'])
      assert.equal(8, t['cb.1.on_epoch_end'])
      assert.equal(9, t['defaults.blocks.Dense.kernel_init'])
      assert.equal(12, t.last)
   end)
end)

describe('config building', function()
   local blocks = require 'kbl.blocks'
   local kbl = require 'kbl'

   it('builds specs into objects only when asked, with refs resolved', function()
      local path = write('refs.lua', [[
return {
   batch_size = 48,
   eval_batch_size = ref 'batch_size',
   vars = {hidden = 12, lr = 0.05},
   model = blocks.MLP{units = {ref 'vars.hidden', 3}},
   optimizer = optim.SGD{lr = ref 'vars.lr'},
}
]])
      local cfg = config.load({path})
      assert.is_true(S.is_ref(cfg.eval_batch_size))
      assert.equal(48, config.build(cfg.eval_batch_size, cfg, 'eval_batch_size'))
      local opt = config.build(cfg.optimizer, cfg, 'optimizer')
      assert.equal(0.05, opt:get_lr())
      local m = config.build(cfg.model, cfg, 'model')
      assert.is_true(blocks.is_block(m))
      local y = m(kbl.randn(2, 5))
      assert.same({2, 3}, y:size())
      assert.equal(12, m:named_parameters()[1][2]:size(1))
   end)

   it('a ref to a missing key or to itself is an error naming it', function()
      local path = write('badref.lua', "return {vars = {a = ref 'vars.b', c = ref 'vars.c'}}")
      local cfg = config.load({path})
      local ok, err = pcall(config.build, cfg.vars.a, cfg, 'vars.a')
      assert.is_false(ok)
      assert.equal(path .. ":1: ref 'vars.b' names no value in the config (at vars.a)", err)
      ok, err = pcall(config.build, cfg.vars.c, cfg, 'vars.c')
      assert.is_false(ok)
      assert.matches("ref 'vars.c' refers to itself", err, 1, true)
   end)

   it('applies defaults by type to blocks built inside library code, and undoes them', function()
      local path = write('defaults.lua', [[
return {
   defaults = {['blocks.Dense'] = {kernel_init = 'zeros'}, ['optim.SGD'] = {momentum = 0.5}},
   model = blocks.MLP{units = {4}},
   optimizer = optim.SGD{lr = 0.1},
}
]])
      local cfg = config.load({path})
      local before = blocks.defaults.Dense and blocks.defaults.Dense.kernel_init
      local undo = config.apply_defaults(cfg)
      local m = config.build(cfg.model, cfg, 'model')
      m(kbl.randn(3, 6))
      local w = m:named_parameters()[1][2]   -- dense1.weight, made inside MLP
      assert.equal(0, w:abs():sum():item())
      local opt = config.build(cfg.optimizer, cfg, 'optimizer')
      assert.equal(0.5, opt.hyper and opt.hyper.momentum or opt.momentum or opt.h and opt.h.momentum)
      undo()
      assert.equal(before, blocks.defaults.Dense and blocks.defaults.Dense.kernel_init)
      local m2 = blocks.MLP{units = {4}}
      m2(kbl.randn(3, 6))
      assert.is_true(m2:named_parameters()[1][2]:abs():sum():item() > 0)
   end)
end)

describe('config stages', function()
   it('each stage inherits the one before', function()
      local path = write('stages.lua', [[
return {
   epochs = 5,
   optimizer = optim.Adam{lr = 1e-3},
   stages = {
      {epochs = 2},
      {lr = 1e-4, freeze = 'backbone.*'},
      {epochs = 1, optimizer = {lr = 3e-5}},
      {unfreeze = {'backbone.stage2.*'}},
   },
}
]])
      local st = config.stages(config.load({path}))
      assert.equal(4, #st)
      assert.same({2, 2, 1, 1}, {st[1].epochs, st[2].epochs, st[3].epochs, st[4].epochs})
      assert.same({}, st[1].freeze)
      assert.same({'backbone.*'}, st[2].freeze)
      assert.same({'backbone.*'}, st[3].freeze)                 -- inherited
      assert.same({'backbone.stage2.*'}, st[4].unfreeze)
      assert.same({}, st[3].unfreeze)
      assert.equal(1e-4, st[3].lr)
      assert.equal(3e-5, st[3].optimizer.args[1].lr)            -- merged into the Adam spec
      assert.equal('optim.Adam', st[3].optimizer.type)
      -- a change of freezing keeps the optimizer (its state is keyed by parameter name)
      assert.same({true, false, true, false}, {st[1].new_optimizer, st[2].new_optimizer, st[3].new_optimizer,
         st[4].new_optimizer})
      local plain = config.stages(config.load({dir .. '/base.lua'}))
      assert.equal(1, #plain)
      assert.equal(3, plain[1].epochs)
   end)

   it('a stage naming only lr or epochs keeps its optimizer', function()
      local path = write('stages2.lua', "return {epochs = 1, optimizer = optim.SGD{lr = 1}, stages = {{}, {lr = 0.1}}}")
      local st = config.stages(config.load({path}))
      assert.is_true(st[1].new_optimizer)
      assert.is_false(st[2].new_optimizer)
   end)
end)

describe('config printing', function()
   local function same(a, b, path)
      path = path or 'config'
      if S.is_spec(a) then
         assert(S.is_spec(b), path .. ' is no longer a spec')
         assert.equal(a.type, b.type, path)
         assert.equal(a.n, b.n, path)
         for i = 1, a.n do same(a.args[i], b.args[i], path .. '(' .. i .. ')') end
      elseif S.is_ref(a) then
         assert(S.is_ref(b), path)
         assert.equal(a.path, b.path, path)
      elseif type(a) == 'table' then
         assert.equal('table', type(b), path)
         for k, v in pairs(a) do same(v, b[k], path .. '.' .. tostring(k)) end
         for k in pairs(b) do assert(a[k] ~= nil, path .. '.' .. tostring(k) .. ' appeared') end
      elseif type(a) == 'function' then
         assert.equal('function', type(b), path)
      else
         assert.equal(a, b, path)
      end
   end

   it('prints Lua that rebuilds the same config', function()
      local path = write('print.lua', [[
return {
   name = 'print me',
   epochs = 2,
   vars = {x = 0.1, y = 1 / 3, big = 1e300, s = "quote \" and\nnewline", ['odd key'] = true},
   batch_size = 16,
   eval_batch_size = ref 'batch_size',
   data = data.generated{kind = 'blobs', n = 64},
   model = blocks.Sequential{blocks.Flatten{}, blocks.Dense{8, activation = 'relu'}, blocks.Dense{3}},
   optimizer = optim.Adam{lr = 1e-3, betas = {0.9, 0.99}},
   transforms = {{'normalize', {mean = 0.5, std = 0.25}}},
   callbacks = {callbacks.LambdaCallback{on_epoch_end = function(ctx, epoch, logs)
      return epoch * 2
   end}},
   defaults = {['blocks.Dense'] = {kernel_init = 'he_normal'}},
   stages = {{epochs = 1}, {lr = 1e-4, freeze = {'1.*'}}},
}
]])
      local cfg = config.load({path})
      local text = config.to_lua(cfg, 'a header')
      assert.matches('^%-%- a header\nreturn {\n', text)
      assert.matches('model = blocks.Sequential{blocks.Flatten{}, blocks.Dense{8, activation = "relu"}, '
         .. 'blocks.Dense{3}}', text, 1, true)
      assert.matches("eval_batch_size = ref \"batch_size\"", text, 1, true)
      local again = write('again.lua', text)
      local cfg2 = config.load({again})
      same(cfg, cfg2)
      assert.equal(1 / 3, cfg2.vars.y)
      assert.equal(6, cfg2.callbacks[1].args[1].on_epoch_end(nil, 3))
      assert.equal(text, config.to_lua(cfg2, 'a header'))
   end)
end)

describe('config errors', function()
   it('a wrong key names the file, the line and the closest valid key', function()
      local path = write('wrongkey.lua', 'return {\n   epochs = 2,\n   optimiser = optim.SGD{lr = 0.1},\n}\n')
      assert.equal(path .. ":3: unknown config key 'optimiser' (did you mean 'optimizer'?)", load_err({path}))
   end)

   it('a wrong key inside a stage names its path', function()
      local path = write('wrongstage.lua',
         'return {\n   stages = {\n      {epochs = 1},\n      {epoch = 2},\n   },\n}\n')
      assert.equal(path .. ":4: unknown config key 'stages.2.epoch' (did you mean 'stages.2.epochs'?)",
         load_err({path}))
   end)

   it('a wrong type names the key and what it got', function()
      local path = write('wrongtype.lua', "return {\n   epochs = 'ten',\n}\n")
      assert.equal(path .. [[:2: config key 'epochs' must be an integer >= 1, got string "ten"]], load_err({path}))
      path = write('wrongtype2.lua', "return {\n   model = 'mlp',\n}\n")
      assert.equal(path .. [[:2: config key 'model' must be a spec such as blocks.MLP{...}, got string "mlp"]],
         load_err({path}))
      path = write('wrongtype3.lua', "return {metrics = {'accuracy'}}\n")
      assert.equal(path
         .. [[:1: config key 'metrics.1' must be a spec such as metrics.Accuracy{}, got string "accuracy"]],
         load_err({path}))
   end)

   it('a missing file says where it looked', function()
      assert.equal("cannot find config 'no_such_config' (looked for lua/kbl/configs/no_such_config.lua, "
         .. "no_such_config.lua)", load_err({'no_such_config'}))
      local path = write('badbase.lua', "return {extends = 'nope'}")
      assert.equal(path .. ":1: cannot find config 'nope' (looked for lua/kbl/configs/nope.lua, " .. dir
         .. "/nope.lua, nope.lua)", load_err({path}))
   end)

   it('a syntax error names the file and line', function()
      local path = write('syntax.lua', 'return {\n   epochs = 2\n   batch_size = 3,\n}\n')
      assert.equal(path .. ":3: syntax error in config: '}' expected (to close '{' at line 1) near 'batch_size'",
         load_err({path}))
   end)

   it('an error running the file names the file and line', function()
      local path = write('runtime.lua', 'local x\nreturn {\n   epochs = x.y,\n}\n')
      assert.equal(path .. ":3: error in config: attempt to index local 'x' (a nil value)", load_err({path}))
      path = write('notable.lua', 'return 42\n')
      assert.equal(path .. ': a config must return a table of settings, got number 42', load_err({path}))
   end)

   it('--set errors name the assignment and the closest key', function()
      local base = dir .. '/base.lua'
      assert.equal("--set optimiser.lr=1: unknown config key 'optimiser' (did you mean 'optimizer'?)",
         load_err({base}, {set = {'optimiser.lr=1'}}))
      assert.equal('--set epochs=}: the value is not a Lua value (unexpected symbol near \'}\')',
         load_err({base}, {set = {'epochs=}'}}))
      assert.equal("--set epochs.x=1: cannot set 'epochs.x': 'epochs' holds number 3, not a table",
         load_err({base}, {set = {'epochs.x=1'}}))
      assert.equal("--set stages.1.epoch=1: unknown stage key 'epoch' (did you mean 'epochs'?)",
         load_err({base}, {set = {'stages.1.epoch=1'}}))
   end)

   it('a wrong argument of a spec is named where it was set, with the closest valid one', function()
      local path = write('wrongarg.lua', 'return {\n   model = blocks.MLP{\n      unit = {4},\n   },\n}\n')
      local cfg, origins = config.load({path})
      local ok, err = pcall(config.build, cfg.model, cfg, 'model', nil, origins)
      assert.is_false(ok)
      assert.matches('^' .. path:gsub('%p', '%%%0') .. ":3: building blocks.MLP for 'model': .*unknown option 'unit' "
         .. "%(did you mean 'units'%?%)", err)
      cfg, origins = config.load({dir .. '/base.lua'}, {set = {'optimizer.lrr=0.1'}})
      ok, err = pcall(config.build, cfg.optimizer, cfg, 'optimizer', nil, origins)
      assert.is_false(ok)
      assert.matches("^%-%-set optimizer.lrr=0.1: building optim.Adam for 'optimizer': .*'lrr'.*did you mean 'lr'", err)
   end)

   it('an unknown type names the file, the line and the closest', function()
      local path = write('wrongtype4.lua', 'return {\n   model = blocks.Dence{units = 3},\n}\n')
      local cfg = config.load({path})
      local ok, err = pcall(config.build, cfg.model, cfg, 'model')
      assert.is_false(ok)
      assert.equal(path .. ":2: unknown type 'blocks.Dence': blocks has no 'Dence' (did you mean 'blocks.Dense'?)", err)
      path = write('sequense.lua', 'return {\n   model = blocks.Sequense{blocks.Dense{3}},\n}\n')
      cfg = config.load({path})
      ok, err = pcall(config.build, cfg.model, cfg, 'model')
      assert.is_false(ok)
      assert.equal(path .. ":2: unknown type 'blocks.Sequense': blocks has no 'Sequense' "
         .. "(did you mean 'blocks.Sequential'?)", err)
   end)

   it('an unknown base config names the file, the line and the closest name', function()
      local path = write('fitt_user.lua', "return {\n   epochs = 1,\n   extends = 'fitt',\n}\n")
      local err = load_err({path})
      assert.matches('^' .. path:gsub('%p', '%%%0') .. ":3: cannot find config 'fitt' %(looked for .*%) "
         .. "%(did you mean 'fit'%?%)$", err)
   end)

   it('a typo in the options of a data source or a schedule is an error naming the closest', function()
      local path = write('datatypo.lua', "return {\n   data = data.generated{n = 8,\n      validaton = 5},\n}\n")
      local cfg, origins = config.load({path})
      local ok, err = pcall(config.build, cfg.data, cfg, 'data', nil, origins)
      assert.is_false(ok)
      assert.matches('^' .. path:gsub('%p', '%%%0') .. ":3: building data.generated for 'data': data.generated: "
         .. "unknown option 'validaton' %(did you mean 'validation'%?%)", err)
      local ok2, err2 = pcall(require('kbl.data').fashion_mnist, {validaton = 5, dir = dir})
      assert.is_false(ok2)
      assert.matches("data.fashion_mnist: unknown option 'validaton' (did you mean 'validation'?)", err2, 1, true)
      local ok3, err3 = pcall(require('kbl.data').csv, {path = 'x.csv', lable = 1})
      assert.is_false(ok3)
      assert.matches("data.csv: unknown option 'lable' (did you mean 'label'?)", err3, 1, true)
      local ok4, err4 = pcall(require('kbl.optim').schedules.cosine, {total = 10, warmpu = 2})
      assert.is_false(ok4)
      assert.matches("schedules.cosine: unknown option 'warmpu' (did you mean 'warmup'?)", err4, 1, true)
   end)

   it('a config cannot assign into a namespace', function()
      local path = write('assign.lua', "blocks.defaults.Dense = {}\nreturn {}\n")
      assert.matches(path:gsub('%p', '%%%0') .. ":1: error in config: a config cannot set blocks.defaults.Dense",
         load_err({path}))
   end)
end)

describe('config nesting', function()
   it('a table that contains itself names the file and the key path', function()
      local path = write('cycle.lua', 'local t = {}\nt.x = {t}\nreturn {\n   vars = t,\n}\n')
      assert.equal(path .. ":4: config key 'vars.x.1' refers back to 'vars', which holds it (a config is a tree "
         .. "of values; a table cannot contain itself)", load_err({path}))
      path = write('cycle2.lua', 'local c = {epochs = 1}\nc.vars = {c}\nreturn c\n')
      assert.equal(path .. ":2: config key 'vars.1' refers back to the whole config, which holds it (a config is "
         .. "a tree of values; a table cannot contain itself)", load_err({path}))
   end)

   it('tables nested too deep name the file and the key path', function()
      local path = write('deep.lua', 'local t = {}\nlocal r = t\nfor i = 1, 100000 do t.x = {} t = t.x end\n'
         .. 'return {\n   vars = r,\n}\n')
      assert.equal(path .. ":5: config key 'vars' nests tables more than 100 deep (at vars.x.x.x.x.x.x.x...)",
         load_err({path}))
   end)

   it('a --set value that contains itself names the --set', function()
      local a = 'vars=(function() local t = {} t.a = {t} return t end)()'
      assert.equal('--set ' .. a .. ": config key 'vars.a.1' refers back to 'vars', which holds it (a config is "
         .. "a tree of values; a table cannot contain itself)", load_err({dir .. '/base.lua'}, {set = {a}}))
   end)
end)

describe('config --set values', function()
   local base = dir .. '/base.lua'

   it('see the config scope and pure Lua', function()
      local cfg = config.load({base}, {set = {'vars={a = math.pi, b = ("x"):rep(3), c = #table.concat({"a", "b"})}',
         'eval_batch_size=ref "batch_size"', 'optimizer=optim.SGD{lr = 0.1, momentum = tonumber("0.5")}',
         'device=cpu', 'name=debug'}})
      assert.same({a = math.pi, b = 'xxx', c = 2}, cfg.vars)
      assert.is_true(S.is_ref(cfg.eval_batch_size))
      assert.same({lr = 0.1, momentum = 0.5}, cfg.optimizer.args[1])
      assert.equal('cpu', cfg.device)
      assert.equal('debug', cfg.name)   -- a bare word is a string, even one that names a library
   end)

   it('cannot reach the system, naming the --set', function()
      local pwned = dir .. '/pwned'
      local refused = {
         {'epochs=io.open("' .. pwned .. '", "w")', 'io'},
         {'epochs=os.execute("touch ' .. pwned .. '")', 'os'},
         {'epochs=require("os").time()', 'require'},
         {'epochs=load("return 1")()', 'load'},
         {'epochs=loadstring("return 1")()', 'loadstring'},
         {'epochs=dofile("' .. base .. '")', 'dofile'},
         {'epochs=loadfile("' .. base .. '")', 'loadfile'},
         {'epochs=package.loaded.os', 'package'},
         {'epochs=debug.getinfo(1).short_src', 'debug'},
         {'epochs=setfenv(1, {})', 'setfenv'},
         {'epochs=getfenv(1).os', 'getfenv'},
         {'epochs=rawset(_G, "x", 1)', 'rawset'},
         {'epochs=_G.os', '_G'},
         {'epochs=collectgarbage("count")', 'collectgarbage'},
         {'epochs=getmetatable("").__index.dump', 'getmetatable'},
         {'epochs=jit.version', 'jit'},
         {'model=kbl.lib.C.kbl_version{}', 'kbl.lib'},
         {'model=kbl.lib', 'kbl.lib'},
         {'model=kbl.ffi', 'kbl.ffi'},
         {'model=blocks.Dense{activation = kbl._G}', 'kbl._G'},
         {'model=kbl.save(kbl.tensor{1}, "' .. pwned .. '")', 'kbl.save'},
         {'model=data.idx.write(kbl.tensor{1}, "' .. pwned .. '")', 'data.idx.write'},
      }
      for _, c in ipairs(refused) do
         local err = load_err({base}, {set = {c[1]}})
         assert.equal('--set ' .. c[1] .. ": '" .. c[2] .. "' is not available to a --set value (it sees kbl, "
            .. 'blocks, optim, losses, metrics, data, callbacks, ref, math, string and table; config files are '
            .. 'trusted Lua)', err)
      end
      assert.is_false(H_exists(pwned))
   end)

   it('get no string.dump, through the string table or a string\'s metatable', function()
      assert.matches("^%-%-set epochs=string.dump%(function%(%) end%): .*dump", load_err({base},
         {set = {'epochs=string.dump(function() end)'}}))
      assert.equal('--set epochs=("").dump: the value is not a Lua value (it is nil)',
         load_err({base}, {set = {'epochs=("").dump'}}))
      assert.is_function(('').dump)   -- the string metatable is kbl's own again afterwards
   end)

   it('a value that fails to evaluate is explained, not shown as a raw Lua error', function()
      local cases = {
         {'optimizer.lr=e-4', "'e' is not defined in the config scope"},
         {"batch_size=rgf 'epochs'", "'rgf' is not defined in the config scope"},
         {'batch_size=ref /ep', "cannot perform arithmetic on 'ref', which is a function"},
         {"optimizer.lr=1e-2 * 'x'", 'cannot perform arithmetic on a string'},
         {'vars={512<x}', 'cannot compare number with nothing (nil)'},
         {'vars=math.floor()', 'argument #1 of a function is wrong (number expected, got no value)'},
         {'vars=("x"):rep()', 'argument #2 of a function is wrong (number expected, got no value)'},
         {'vars=error("mine")', 'mine'},
      }
      for _, c in ipairs(cases) do
         assert.equal('--set ' .. c[1] .. ': ' .. c[2], load_err({base}, {set = {c[1]}}))
      end
   end)

   it('cannot change the libraries kbl uses or set globals', function()
      local cfg = config.load({base},
         {set = {'epochs=(function() math.floor = nil; string.rep = nil; return 2 end)()'}})
      assert.equal(2, cfg.epochs)
      assert.is_function(math.floor)
      assert.is_function(string.rep)
      assert.equal("--set epochs=(function() x = 1 return 1 end)(): a --set value cannot set the global 'x'",
         load_err({base}, {set = {'epochs=(function() x = 1 return 1 end)()'}}))
   end)

   it('a config file cannot call into kbl.lib through a spec either', function()
      local path = write('cspec.lua', 'return {\n   model = kbl.lib.C.kbl_version{},\n}\n')
      local cfg = config.load({path})
      local ok, err = pcall(config.build, cfg.model, cfg, 'model')
      assert.is_false(ok)
      assert.equal(path .. ":2: unknown type 'kbl.lib.C.kbl_version': kbl.lib.C is not a table of types", err)
   end)

   it('errors about a value set by --set name the --set, not the base config', function()
      local function build_err(sets, key)
         local cfg, origins = config.load({base}, {set = sets})
         local ok, err = pcall(config.build, cfg[key], cfg, key, nil, origins)
         assert.is_false(ok)
         return err
      end
      assert.matches("^%-%-set optimizer.lr=abc: building optim.Adam for 'optimizer': .*lr", build_err(
         {'optimizer.lr=abc'}, 'optimizer'))
      assert.matches("^%-%-set model=blocks.Dense{unit = 3}: building blocks.Dense for 'model': "
         .. ".*unknown option 'unit' "
         .. "%(did you mean 'units'%?%)", build_err({'model=blocks.Dense{unit = 3}'}, 'model'))
      assert.equal("--set vars={a = ref 'nope'}: ref 'nope' names no value in the config (at vars.a)",
         build_err({"vars={a = ref 'nope'}"}, 'vars'))
      assert.equal("--set model=blocks.Dens{}: unknown type 'blocks.Dens': blocks has no 'Dens' "
         .. "(did you mean 'blocks.Dense'?)", build_err({'model=blocks.Dens{}'}, 'model'))
   end)

   it('a named option replaces a positional one set earlier', function()
      local path = write('positional.lua',
         'return {\n   model = blocks.Sequential{blocks.Flatten{}, blocks.Dense{3}},\n}\n')
      local cfg, origins = config.load({path}, {set = {'model.2.units="x"'}})
      local ok, err = pcall(config.build, cfg.model, cfg, 'model', nil, origins)
      assert.is_false(ok)
      assert.equal("--set model.2.units=\"x\": building blocks.Dense for 'model.2': blocks.Dense: units must be a "
         .. 'positive whole number, got x', err)
      cfg = config.load({path}, {set = {'model.2.units=5'}})
      assert.same({units = 5}, cfg.model.args[1][2].args[1])
      local over = write('positional2.lua',
         "return {\n   extends = 'positional',\n   model = {[2] = {units = 4}},\n}\n")
      cfg = config.load({over})
      assert.same({units = 4}, cfg.model.args[1][2].args[1])
      local both = write('positional3.lua', 'return {\n   model = blocks.Dense{3, units = 4},\n}\n')
      cfg, origins = config.load({both})
      ok, err = pcall(config.build, cfg.model, cfg, 'model', nil, origins)
      assert.is_false(ok)
      assert.matches("option 'units' given twice", err, 1, true)   -- in one spec, still a mistake
   end)
end)
