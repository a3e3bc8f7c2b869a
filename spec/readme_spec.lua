-- readme: every ```lua block of README.md runs, each in a fresh LuaJIT process
-- (bin/kbl BLOCK.lua, or bin/kbl check for a config, which returns a table) in
-- a temporary directory, and every `print(...) --> text` line prints that text.
-- A block that uses CUDA runs with cuda read as cpu, and on the GPU when one exists.
local H = require 'helper'
local MD = require 'markdown_blocks'

local function lua_blocks(text) return MD.lua_blocks(text, 'README.md') end
local function check_block(b, code) return MD.check_block('README.md', b, code) end

local blocks = lua_blocks(assert(H.read('README.md')))

describe('README.md', function()
   it('has lua blocks to check, and the checker reads them', function()
      assert.is_true(#blocks >= 4)
      local b = lua_blocks('x\n```lua\nprint(1)  --> 1\n```\n```sh\nls\n```\n```lua\nreturn {\n}\n```\n')
      assert.are.same({{line = 3, code = 'print(1)  --> 1\n'}, {line = 9, code = 'return {\n}\n'}}, b)
      assert.are.same({'{2, 2} 2'}, MD.expected_lines('print(x:size(), 2)   --> {2, 2}\t 2 \nprint(3)\n'))
      assert.is_true(MD.is_config('-- a config\nreturn {}\n'))
      assert.is_false(MD.is_config('local x = 1\nreturn {x}\n'))
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
