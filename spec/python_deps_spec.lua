-- python_deps: the Python that specs and benchmarks run (spec/**/*.py, bench/*.py,
-- and Python written inline in spec/ and bench/ Lua and shell files) imports only
-- the standard library, files beside it, and modules scripts/setup.sh installs, so
-- the suite passes on a fresh machine. An optional import is allowed when it is
-- guarded: inside try/except ImportError (or ModuleNotFoundError) with a fallback,
-- as safetensors_ref.py does for the safetensors package and tfevents_read.py for
-- tensorboard.
local json = require 'dkjson'
local H = require 'helper'

local PY = '/usr/bin/python3'
local LISTER = 'spec/fixtures/python_imports.py'

-- Debian package -> its import name, where that is not the name after python3-
-- with '-' read as '_'.
local MODULE_OF = {['python3-yaml'] = 'yaml', ['python3-pil'] = 'PIL', ['python3-sklearn'] = 'sklearn',
   ['python3-protobuf'] = 'google', ['python3-opencv'] = 'cv2', ['python3-dateutil'] = 'dateutil'}

-- The modules setup.sh installs: Debian python3-* packages and `pip install` names.
local function installed_modules(setup_text)
   local mods = {}
   for pkg in setup_text:gmatch('%f[%w]python3%-[%w%-%.]+') do
      mods[MODULE_OF[pkg] or pkg:sub(9):gsub('%-', '_')] = pkg
   end
   for args in setup_text:gmatch('pip3?["\']? install([^\n]*)') do   -- "$VENV/bin/pip" install too
      for word in args:gmatch('%S+') do
         if not word:match('^%-') then mods[(word:match('^[%w_%.%-]+') or word):gsub('%-', '_')] = 'pip ' .. word end
      end
   end
   return mods
end

local function lines(cmd)
   local out = {}
   local p = io.popen(cmd)
   for l in p:lines() do out[#out + 1] = l end
   p:close()
   return out
end

-- Python kept inside Lua and shell files: `-c "..."` commands and Lua long
-- strings whose lines import something (a driver written to a .py file).
local function inline_snippets(path)
   local text = assert(H.read(path))
   local found = {}
   local function add(code, at)
      local line = select(2, text:sub(1, at):gsub('\n', '')) + 1
      found[#found + 1] = {origin = path .. ':' .. line, code = code}
   end
   for _, q in ipairs{'"', "'"} do
      for at, code in text:gmatch('()%-c%s+' .. q .. '([^' .. q .. ']*)' .. q) do
         if code:match('%f[%w]import%s') then add(code, at) end
      end
   end
   for at, _, c in text:gmatch('()%[(=*)%[(.-)%]%2%]') do
      if (c:match('\n%s*import%s+[%w_]') or c:match('\n%s*from%s+[%w_%.]+%s+import%s')) then add(c, at) end
   end
   return found
end

-- Runs the lister over files and snippets; returns its report and a map from
-- the path it saw to the name to print.
local function list_imports(files, snippets, tmp)
   local args, shown = {}, {}
   for _, f in ipairs(files) do args[#args + 1] = f; shown[f] = f end
   for i, s in ipairs(snippets) do
      local dir = tmp .. '/snippet' .. i   -- a folder each: no snippet is "beside" another
      os.execute('mkdir -p ' .. dir)
      local p = dir .. '/inline.py'
      H.write(p, s.code)
      args[#args + 1] = p
      shown[p] = s.origin .. ' (inline Python)'
   end
   local rc, out = H.run(PY .. ' ' .. LISTER .. ' ' .. table.concat(args, ' '))
   assert.are.equal(0, rc, out)
   local report = assert(json.decode(out), out)
   return report, shown
end

-- The imports that would fail on a fresh machine, one message each.
local function offenders(report, shown, installed)
   local stdlib = {}
   for _, m in ipairs(report.stdlib) do stdlib[m] = true end
   local bad = {}
   for _, e in ipairs(report.errors) do bad[#bad + 1] = 'cannot parse ' .. e end
   for _, imp in ipairs(report.imports) do
      if not (stdlib[imp.module] or installed[imp.module] or imp.guarded) then
         bad[#bad + 1] = string.format("%s:%d imports '%s', which scripts/setup.sh does not install "
            .. '(add its package to setup.sh, or guard the import with try/except ImportError and a fallback)',
            shown[imp.file] or imp.file, imp.line, imp.module)
      end
   end
   return bad
end

local function python_files()
   return lines('find spec bench -name "*.py" | sort')
end

local function all_snippets()
   local found = {}
   for _, path in ipairs(lines('ls spec/*.lua bench/*.lua bench/*.sh 2>/dev/null')) do
      if path ~= 'spec/python_deps_spec.lua' then
         for _, s in ipairs(inline_snippets(path)) do found[#found + 1] = s end
      end
   end
   return found
end

describe('python dependencies', function()
   local tmp = H.tmpdir()
   teardown(function() os.execute('rm -rf ' .. tmp) end)
   local have_python = H.run(PY .. ' -c "import ast, json"') == 0

   it('finds the Python that specs and benchmarks run', function()
      local files = table.concat(python_files(), '\n')
      for _, f in ipairs{'spec/fixtures/safetensors_ref.py', 'spec/fixtures/npy_ref.py', 'bench/mlp.py'} do
         assert.truthy(files:find(f, 1, true), f)
      end
      local origins = {}
      for _, s in ipairs(all_snippets()) do origins[#origins + 1] = s.origin end
      origins = table.concat(origins, '\n')
      assert.matches('spec/repl_spec.lua:%d+', origins)        -- the pty driver, a long string
      assert.matches('spec/safetensors_spec.lua:%d+', origins) -- python3 -c "import numpy"
   end)

   it('reads the modules scripts/setup.sh installs', function()
      local mods = installed_modules(assert(H.read('scripts/setup.sh')))
      assert.are.equal('python3-torch', mods.torch)
      assert.are.equal('python3-numpy', mods.numpy)
      assert.are.equal('pip safetensors', mods.safetensors)   -- into the test venv
      local m = installed_modules('PACKAGES="a python3-yaml python3-foo-bar"\npip install --user six==1\n'
         .. '"$V/bin/pip" install -q tensorboard\n')
      assert.are.same({yaml = 'python3-yaml', foo_bar = 'python3-foo-bar', six = 'pip six==1',
         tensorboard = 'pip tensorboard'}, m)
   end)

   it('every spec, fixture and benchmark imports only what setup.sh installs', function()
      if not have_python then return pending(PY .. ' is not installed') end
      local installed = installed_modules(assert(H.read('scripts/setup.sh')))
      local report, shown = list_imports(python_files(), all_snippets(), tmp)
      assert.is_true(#report.imports > 20)
      local bad = offenders(report, shown, installed)
      assert.are.equal(0, #bad, table.concat(bad, '\n'))
   end)

   it('fails on a planted unguarded import and allows a guarded one', function()
      if not have_python then return pending(PY .. ' is not installed') end
      local installed = {torch = 'python3-torch', numpy = 'python3-numpy'}
      local planted = tmp .. '/planted.py'
      H.write(planted, table.concat({
         'import json, os.path',
         'import numpy as np',
         'from kbl_not_installed_a.sub import thing',
         'def f():',
         '    import kbl_not_installed_b',
         'try:',
         '    import kbl_optional_c',
         'except ImportError:',
         '    kbl_optional_c = None',
         'try:',
         '    from kbl_optional_d import x',
         'except (ValueError, ModuleNotFoundError):',
         '    x = None',
         'try:',
         '    import kbl_not_installed_e',
         'except ValueError:',
         '    pass',
         "m = __import__('kbl_not_installed_f')",
      }, '\n') .. '\n')
      H.write(tmp .. '/beside.py', 'X = 1\n')
      H.write(tmp .. '/uses_beside.py', 'import beside\nfrom beside import X\n')
      local snippet = {{origin = 'some_spec.lua:7', code = 'import sys, kbl_not_installed_g\n'}}
      local report, shown = list_imports({planted, tmp .. '/uses_beside.py'}, snippet, tmp)
      local bad = offenders(report, shown, installed)
      local text = table.concat(bad, '\n')
      assert.are.equal(5, #bad, text)
      assert.matches(planted .. ":3 imports 'kbl_not_installed_a', which scripts/setup.sh does not install", text,
         1, true)
      assert.matches(planted .. ":5 imports 'kbl_not_installed_b'", text, 1, true)
      assert.matches(planted .. ":15 imports 'kbl_not_installed_e'", text, 1, true)   -- except ValueError: no guard
      assert.matches(planted .. ":18 imports 'kbl_not_installed_f'", text, 1, true)
      assert.matches("some_spec.lua:7 (inline Python):1 imports 'kbl_not_installed_g'", text, 1, true)
      assert.is_nil(text:find('optional', 1, true))
      assert.is_nil(text:find('beside', 1, true))
      -- and a file that does not parse is reported, not skipped
      H.write(tmp .. '/broken.py', 'import (\n')
      report, shown = list_imports({tmp .. '/broken.py'}, {}, tmp)
      assert.matches('cannot parse .*broken%.py', table.concat(offenders(report, shown, installed), '\n'))
   end)
end)
