-- spec/markdown_blocks.lua: runs the ```lua blocks of a Markdown page as
-- checks, for spec/docs_spec.lua (the guides in docs/) and spec/readme_spec.lua
-- (README.md): each block runs in a fresh LuaJIT process (bin/kbl
-- BLOCK.lua, or bin/kbl check for a config, which returns a table) in a
-- temporary directory, and every `print(...) --> text` line must print that
-- text (runs of blanks count as one).
local H = require 'helper'
local assert = require 'luassert'   -- a module does not see busted's assert

local M = {}

local ROOT = os.getenv('PWD') or '.'
local BUILD = os.getenv('KBL_BUILD_DIR') or 'build'

-- The lua blocks of a markdown text: {line = first code line, code = text}.
function M.lua_blocks(text, name)
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
   assert(not block, (name or 'page') .. ': the lua block at line ' .. (block and block.line or 0) .. ' is not closed')
   return found
end

local function squash(s) return (s:gsub('[ \t]+', ' '):gsub('^ ', ''):gsub(' $', '')) end
M.squash = squash

function M.expected_lines(code)
   local out = {}
   for line in code:gmatch('[^\n]+') do
      local want = line:match('^%s*print%(.*%)%s*%-%->%s*(.-)%s*$')
      if want then out[#out + 1] = squash(want) end
   end
   return out
end

function M.is_config(code)
   return code:gsub('%-%-[^\n]*', ''):match('^%s*return%s*{') ~= nil
end

-- Runs a block in a fresh directory (with the checkout's examples/ and
-- lua/kbl/configs reachable as in a user's project); returns the exit status and the output.
function M.run_block(code, name)
   local dir = H.tmpdir()
   H.write(dir .. '/' .. name, code)
   local cmd = M.is_config(code) and 'check ' .. name or name
   local rc, out = H.run(string.format('cd %s && KBL_BUILD_DIR=%s timeout 300 %s/bin/kbl %s',
      dir, BUILD:sub(1, 1) == '/' and BUILD or ROOT .. '/' .. BUILD, ROOT, cmd))
   os.execute('rm -rf ' .. dir)
   return rc, out
end

-- Fails naming page:line when the block fails or does not print what it says.
function M.check_block(page, b, code)
   local rc, out = M.run_block(code, 'block_' .. b.line .. '.lua')
   assert.are.equal(0, rc, page .. ':' .. b.line .. ' failed:\n' .. out)
   local got = {}
   for line in out:gmatch('[^\n]+') do got[squash(line)] = true end
   for _, want in ipairs(M.expected_lines(code)) do
      assert.is_true(got[want] == true, string.format("%s:%d should print '%s'; it printed:\n%s",
         page, b.line, want, out))
   end
end

return M
