--- kbl repl: an interactive LuaJIT prompt with kbl, blocks, optim, data, losses,
-- metrics and callbacks preloaded (kbl.repl).
local M = {summary = 'Start an interactive prompt with kbl preloaded.'}

function M.describe(cmd)
   cmd:flag('--plain', 'Read lines with io.read, without readline.')
   cmd:flag('--quiet', 'No banner.')
end

function M.run(args)
   local repl = require 'kbl.repl'
   local reader
   if args.plain then
      reader = {kind = 'plain', read = function(prompt)
         io.write(prompt)
         io.flush()
         return io.read('*l')
      end, add = function() end, close = function() end}
   end
   repl.run{reader = reader, quiet = args.quiet}
end

return M
