-- luacheck configuration (scripts/lint.sh runs it over lua/, spec/, examples/,
-- bench/ and the Lua files in bin/). kbl runs on LuaJIT, so its globals (bit,
-- jit, unpack...) are allowed; nothing else may be read or set as a global.
std = 'luajit'
codes = true
max_line_length = 120
max_code_line_length = 120
max_string_line_length = 160   -- long error messages and expected-output strings
max_comment_line_length = 160  -- URLs and quoted output in comments
-- `_` and `_name` are the conventional unused names.
unused_secondaries = true
ignore = {'212/_.*', '213/_.*'}

-- busted's globals (describe, it, assert.are.equal, spy...) in specs only.
files['spec/'] = {std = '+busted'}
files['spec/helper.lua'] = {std = '+busted'}
-- Generated fixture data (spec/fixtures/make_fixtures.py writes it): long lines
-- of numbers are its nature.
files['spec/fixtures/'] = {max_line_length = false}
-- Experiment configs run with kbl, blocks, optim... in scope (DESIGN.md), so a
-- config needs no require; examples/ holds experiment files too.
local config_globals = {'kbl', 'blocks', 'optim', 'losses', 'metrics', 'data', 'callbacks',
   'defaults', 'ref'}
files['lua/kbl/configs/'] = {read_globals = config_globals}
files['examples/'] = {read_globals = config_globals}

exclude_files = {'build*/**', '.luarocks/**', 'rocks/**'}
