--- kbl.cli: the `kbl` command. `kbl FILE.lua [args]` runs a script with kbl
-- available (as Torch7's `th`); the subcommands live in kbl/commands/, one file
-- each, exposing `describe(parser)` and `run(args)`. Failures print one line
-- on stderr, the problem and the user's file:line or the command, without
-- kbl's own source locations (kbl.message), and exit non-zero; --debug or
-- KBL_DEBUG=1 prints the message as raised and the traceback.
local argparse = require 'argparse'

local COMMANDS = {'run', 'check', 'eval', 'sweep', 'compare', 'repl', 'info', 'bench', 'verify-resume', 'data', 'doc',
   'export', 'predict'}

local M = {}

local function load_command(name)
   local ok, mod = pcall(require, 'kbl.commands.' .. name:gsub('-', '_'))
   if ok then return mod end
   if not tostring(mod):match("module 'kbl.commands") then error(mod, 0) end
   return nil
end

local function debug_on() return (os.getenv('KBL_DEBUG') or '') ~= '' and os.getenv('KBL_DEBUG') ~= '0' end

-- Prints the error and exits 1; trace (debug mode) keeps the message raw,
-- else where (the user's file:line) goes in front of a message without one.
local function fail(msg, trace, where)
   if trace then
      io.stderr:write('kbl: ', tostring(msg), '\n', trace, '\n')
   else
      io.stderr:write('kbl: ', require('kbl.message').clean(msg, where), '\n')
   end
   -- under mpirun, one failing rank ends the job now (the others would wait for it)
   local dist = package.loaded['kbl.dist']
   if dist then dist.on_failure() end
   os.exit(1)
end

-- The error handler of a script or a command: the message, where the user's
-- code was, and in debug mode the traceback.
local function handler(debug_mode)
   return function(e)
      return {msg = e, where = require('kbl.message').user_where(2),
         trace = debug_mode and debug.traceback('', 2) or nil}
   end
end

-- argparse reads `--level -1` as an unknown option -1; a negative number
-- after a long option is joined to it (`--level=-1`), as a user means it.
local function with_negative_values(argv)
   local out = {}
   for i = 1, #argv do
      local a, prev = argv[i], out[#out]
      if prev and prev:match('^%-%-[%w][%w-]*$') and a:match('^%-%d[%d.]*$') then
         out[#out] = prev .. '=' .. a
      else
         out[#out + 1] = a
      end
   end
   return out
end

-- Runs a Lua script with arg set as `lua script.lua ...` would.
local function run_script(path, argv)
   local chunk, err = loadfile(path)
   if not chunk then fail(err) end
   _G.arg = {[0] = path}
   for i = 1, #argv do _G.arg[i] = argv[i] end
   local debug_mode = debug_on()
   local ok, e = xpcall(function() return chunk(unpack(argv)) end, handler(debug_mode))
   if not ok then fail(e.msg, e.trace, e.where) end
end

function M.main(argv)
   argv = argv or {}
   local first = argv[1]
   -- `kbl FILE.lua ...`: a script, not a subcommand
   if first and first:match('%.lua$') and not first:match('^%-') then
      local rest = {}
      for i = 2, #argv do rest[#rest + 1] = argv[i] end
      local f = io.open(first)
      if not f then fail('cannot open script ' .. first) end
      f:close()
      return run_script(first, rest)
   end
   local kbl_version = '0.1.0'
   local ok_lib, kbl = pcall(require, 'kbl')
   if ok_lib then kbl_version = kbl.version() end
   local parser = argparse('kbl', 'kbl: a deep learning toolkit in C with a LuaJIT front end.')
      :epilog('Run `kbl FILE.lua [args]` to run a script with kbl available.\n'
         .. 'Set KBL_DEBUG=1 (or give --debug) to see where an error was raised, with the traceback.')
   parser:flag('--version', 'Print the version and exit.'):action(function()
      print('kbl ' .. kbl_version)
      os.exit(0)
   end)
   parser:flag('--debug', 'Show tracebacks on errors (as KBL_DEBUG=1 does).')
   parser:command_target('command')
   local handlers = {}
   for _, name in ipairs(COMMANDS) do
      local mod = load_command(name)
      if mod then
         local cmd = parser:command(name, mod.summary)
         mod.describe(cmd)
         handlers[name] = mod
      end
   end
   local ok, args = parser:pparse(with_negative_values(argv))
   if not ok then
      io.stderr:write(parser:get_usage(), '\n\nkbl: ', args, '\n')
      os.exit(2)
   end
   if not args.command then
      print(parser:get_help())
      os.exit(0)
   end
   if not ok_lib then fail(kbl) end
   local debug_mode = args.debug or debug_on()
   local okr, err = xpcall(function() return handlers[args.command].run(args) end, handler(debug_mode))
   if not okr then fail(err.msg, err.trace, err.where) end
end

-- bin/kbl runs this file directly.
if arg and arg[0] and arg[0]:match('kbl/cli%.lua$') then
   M.main({...})
end

return M
