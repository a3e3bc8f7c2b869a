-- spec/docs_spec.lua: the guides in docs/ hold what they say. Every ```lua
-- block of docs/*.md runs (spec/markdown_blocks.lua: a script with bin/kbl, a
-- config with bin/kbl check) and prints what its `--> text` comments say; a
-- block that uses CUDA runs with cuda read as cpu, and as written on a GPU.
-- Every guide is listed in docs/README.md, and every guide the issue asks for exists.
local H = require 'helper'
local MB = require 'markdown_blocks'

local GUIDES = {'experiment', 'configs', 'blocks', 'data', 'training', 'resume', 'cuda', 'export'}

describe('docs/', function()
   local index = H.read('docs/README.md') or ''

   it('has every guide, each listed in docs/README.md', function()
      for _, g in ipairs(GUIDES) do
         assert.is_true(H.exists('docs/' .. g .. '.md'), 'docs/' .. g .. '.md is missing')
         assert.matches('%(' .. g .. '%.md%)', index, 1)
      end
   end)

   it('the block checker fails a block that fails or prints something else', function()
      local ok, err = pcall(MB.check_block, 'docs/x.md', {line = 1}, 'error("boom")\n')
      assert.is_false(ok)
      assert.matches('docs/x.md:1 failed:.*boom', tostring(err))
      ok, err = pcall(MB.check_block, 'docs/x.md', {line = 2}, 'print(1 + 1)  --> 3\n')
      assert.is_false(ok)
      assert.matches("docs/x.md:2 should print '3'", tostring(err), 1, true)
   end)

   for _, g in ipairs(GUIDES) do
      local page = 'docs/' .. g .. '.md'
      local text = H.read(page)
      for _, b in ipairs(text and MB.lua_blocks(text, page) or {}) do
         local first = b.code:match('[^\n]*%S[^\n]*'):gsub('^%s+', ''):sub(1, 50)
         if b.code:match('cuda') and not b.code:match('is_available') then
            it(string.format('%s:%d runs with cuda read as cpu (%s)', page, b.line, first), function()
               MB.check_block(page, b, (b.code:gsub(':cuda%(%)', ':cpu()'):gsub("'cuda'", "'cpu'")))
            end)
            it(string.format('%s:%d runs on the GPU', page, b.line), function()
               if not H.cuda_available() then
                  return pending(page .. ':' .. b.line .. ' needs a GPU: kbl.cuda.is_available() is false here')
               end
               MB.check_block(page, b, b.code)
            end)
         else
            it(string.format('%s:%d runs (%s)', page, b.line, first), function()
               MB.check_block(page, b, b.code)
            end)
         end
      end
   end
end)
