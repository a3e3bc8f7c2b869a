--- kbl.message: turns an error into what a user should read: the problem and
-- their own file:line or the command, without kbl's own source locations
-- (`/…/lua/kbl/fit.lua:252: `) or doubled `kbl: ` prefixes. The command line
-- and the REPL print errors through it; KBL_DEBUG=1 shows them raw with the
-- traceback.
--
--   message.clean('/x/lua/kbl/fit.lua:252: kbl: cross_entropy: bad label')  --> 'cross_entropy: bad label'
--   message.clean('my.lua:3: kbl: add: shapes ...')                         --> 'my.lua:3: add: shapes ...'
local M = {}

-- lua/, the directory that holds kbl/ and blocks/ (in a checkout or installed).
local LUA_DIR = (debug.getinfo(1, 'S').source:sub(2):match('^(.*)/kbl/[^/]*$')) or 'lua'

local function exists(path)
   local f = io.open(path, 'rb')
   if f then f:close() end
   return f ~= nil
end

-- Whether a chunk name from a message ("/x/lua/kbl/fit.lua", "lua/kbl/blocks/Dense.lua",
-- or one shortened by Lua to "...n/lua/kbl/fit.lua") is one of kbl's own files.
function M.is_internal(path)
   local cut
   path, cut = path:gsub('^%.%.%.', '')
   if cut > 0 then
      -- shortened: the rest, or any tail of it after a '/', naming a file under kbl/ or blocks/
      for s in ('/' .. path):gmatch('/()') do
         local tail = path:sub(s - 1)
         if exists(LUA_DIR .. '/kbl/' .. tail) or exists(LUA_DIR .. '/kbl/blocks/' .. tail) then return true end
      end
   end
   for _, dir in ipairs{'kbl/', 'blocks/'} do
      local from = 1
      while true do
         local s = path:find(dir, from, true)
         if not s then break end
         if (s == 1 or path:sub(s - 1, s - 1) == '/') and exists(LUA_DIR .. '/' .. path:sub(s)) then
            return true
         end
         from = s + 1
      end
   end
   return false
end

-- Where on the stack, from level up, the user's own code was running: the
-- file:line of the innermost Lua function that is neither kbl's nor an
-- installed library's (a script, a function in a config file), or nil. Call
-- it from an error handler.
function M.user_where(level)
   level = (level or 1) + 1
   while true do
      local info = debug.getinfo(level, 'Sl')
      if not info then return nil end
      if info.source:sub(1, 1) == '@' and (info.currentline or 0) > 0 and not M.is_internal(info.short_src)
         and not info.source:match('^@/usr/') then
         return info.short_src .. ':' .. info.currentline
      end
      level = level + 1
   end
end

-- The message without kbl's own locations and with no `kbl: ` prefix (the
-- caller adds one); where (see user_where), when given, is put in front of
-- a message that names no location of its own.
function M.clean(msg, where)
   msg = tostring(msg)
   msg = msg:gsub('(%S+%.lua):%d+: ', function(path)
      if M.is_internal(path) then return '' end
   end)
   msg = msg:gsub('^kbl: ', ''):gsub('^kbl: ', '')
   msg = msg:gsub('([:,]) kbl: ', '%1 ')
   if where and not msg:match('^%S+:%d+: ') and not msg:match('^%-%-set ') then
      msg = where .. ': ' .. msg
   end
   return msg
end

return M
