-- readme: every ```lua block of README.md runs, each in a fresh LuaJIT process
-- (bin/kbl BLOCK.lua, or bin/kbl check for a config, which returns a table) in
-- a temporary directory, and every `print(...) --> text` line prints that text.
-- A block that uses CUDA runs with cuda read as cpu, and on the GPU when one exists.
local H = require 'helper'

local ROOT = os.getenv('PWD') or '.'
local BUILD = os.getenv('KBL_BUILD_DIR') or 'build'

-- The lua blocks of a markdown text: {line = first code line, code = text}.
local function lua_blocks(text)
   local found, block, n = {}, nil, 0
   for line in (text .. '\n'):gmatch('(.-)\n') do
      n = n + 1
      if block then
         if line:match('^```%s*$') then
            found[#found + 1] = block
            block = nil
         else
            block.code = block.code .. line .. '\n'
         end
      elseif line:match('^```lua%s*$') then
         block = {line = n + 1, code = ''}
      end
   end
   assert(not block, 'README.md: the lua block at line ' .. (block and block.line or 0) .. ' is not closed')
   return found
end

-- `print(...) --> a  b` lines: the output must hold a line "a b" (runs of
-- spaces and tabs count as one space).
local function squash(s) return (s:gsub('[ \t]+', ' '):gsub('^ ', ''):gsub(' $', '')) end
local function expected_lines(code)
   local out = {}
   for line in code:gmatch('[^\n]+') do
      local want = line:match('^%s*print%(.*%)%s*%-%->%s*(.-)%s*$')
      if want then out[#out + 1] = squash(want) end
   end
   return out
end

local function is_config(code)
   return code:gsub('%-%-[^\n]*', ''):match('^%s*return%s*{') ~= nil
end

-- Runs a block in a fresh directory; returns the exit status and the output.
local function run_block(code, name)
   local dir = H.tmpdir()
   H.write(dir .. '/' .. name, code)
   local cmd = is_config(code) and 'check ' .. name or name
   local rc, out = H.run(string.format('cd %s && KBL_BUILD_DIR=%s timeout 300 %s/bin/kbl %s',
      dir, BUILD:sub(1, 1) == '/' and BUILD or ROOT .. '/' .. BUILD, ROOT, cmd))
   os.execute('rm -rf ' .. dir)
   return rc, out
end

local function check_block(b, code)
   local rc, out = run_block(code, 'readme_' .. b.line .. '.lua')
   assert.are.equal(0, rc, 'README.md:' .. b.line .. ' failed:\n' .. out)
   local got = {}
   for line in out:gmatch('[^\n]+') do got[squash(line)] = true end
   for _, want in ipairs(expected_lines(code)) do
      assert.is_true(got[want] == true, string.format("README.md:%d should print '%s'; it printed:\n%s",
         b.line, want, out))
   end
end

local blocks = lua_blocks(assert(H.read('README.md')))

describe('README.md', function()
   it('has lua blocks to check, and the checker reads them', function()
      assert.is_true(#blocks >= 4)
      local b = lua_blocks('x\n```lua\nprint(1)  --> 1\n```\n```sh\nls\n```\n```lua\nreturn {\n}\n```\n')
      assert.are.same({{line = 3, code = 'print(1)  --> 1\n'}, {line = 9, code = 'return {\n}\n'}}, b)
      assert.are.same({'{2, 2} 2'}, expected_lines('print(x:size(), 2)   --> {2, 2}\t 2 \nprint(3)\n'))
      assert.is_true(is_config('-- a config\nreturn {}\n'))
      assert.is_false(is_config('local x = 1\nreturn {x}\n'))
   end)

   it('a block that fails or prints something else fails the check', function()
      local ok, err = pcall(check_block, {line = 1}, 'error("boom")\n')
      assert.is_false(ok)
      assert.matches('README.md:1 failed:.*boom', tostring(err))
      ok, err = pcall(check_block, {line = 2}, 'print(1 + 1)  --> 3\n')
      assert.is_false(ok)
      assert.matches("README.md:2 should print '3'", tostring(err), 1, true)
      ok = pcall(check_block, {line = 3}, 'print(1 + 1, "a")  --> 2   a\n')
      assert.is_true(ok)
   end)

   for _, b in ipairs(blocks) do
      local first = b.code:match('[^\n]*%S[^\n]*'):gsub('^%s+', ''):sub(1, 50)
      if b.code:match('cuda') then
         it(string.format('runs the block at line %d with cuda read as cpu (%s)', b.line, first), function()
            check_block(b, (b.code:gsub(':cuda%(%)', ':cpu()'):gsub("'cuda'", "'cpu'")))
         end)
         it(string.format('runs the block at line %d on the GPU', b.line), function()
            if not H.cuda_available() then
               return pending('README.md:' .. b.line .. ' needs a GPU: kbl.cuda.is_available() is false here')
            end
            check_block(b, b.code)
         end)
      else
         it(string.format('runs the block at line %d (%s)', b.line, first), function()
            check_block(b, b.code)
         end)
      end
   end
end)
