--- kbl.doc.source: reads the LDoc comments of a Lua file (kbl.doc's parser):
-- `--- summary` blocks with @param, @tparam, @return, @treturn, @usage,
-- @option (kbl's tag for options), @function, @local; the names the code line
-- after a block defines; the plain comments right above lines (shown when a
-- function has no doc comment); the file's opening comment. Each file is read
-- once and cached.
local M = {}

-- ---- reading doc comments ---------------------------------------------------------

local TAGS = {param = true, tparam = true, ['return'] = true, treturn = true, usage = true, option = true,
   ['function'] = true, field = true, see = true, ['local'] = true, module = true, classmod = true,
   raise = true, within = true, table = true, type = true, submodule = true}

-- `@param[opt=1] name words` / `@tparam[opt] number name words` -> {name, type, opt, default, text}
local function param_of(tag, rest)
   local mod, body = rest:match('^%[(.-)%]%s*(.*)$')
   body = body or rest
   local p = {}
   if mod then
      p.opt = mod:match('opt') ~= nil
      p.default = mod:match('opt=(.*)$')
   end
   if tag == 'tparam' or tag == 'treturn' then
      p.type, body = body:match('^(%S+)%s*(.*)$')
   end
   if tag == 'param' or tag == 'tparam' or tag == 'option' then
      p.name, body = (body or ''):match('^(%S+)%s*(.*)$')
   end
   p.text = body or ''
   return p
end

-- The names a code line defines: `function M.conv2d(` -> 'M.conv2d'; `M.X = f(` ->
-- 'M.X'; a first quoted argument (`define('Accuracy', ...)`) -> 'Accuracy'.
function M.names_of(line)
   local out = {}
   local n = line:match('^%s*local%s+function%s+([%w_]+)') or line:match('^%s*function%s+([%w_%.:]+)')
      or line:match('^%s*local%s+([%w_]+)%s*=') or line:match('^%s*([%w_%.]+)%s*=[^=]')
      or line:match('^%s*%[?[\'"]?([%w_]+)[\'"]?%]?%s*=[^=]')
   if n then out[#out + 1] = n end
   local q = line:match('^[^\'"]-[%w_%.]+%s*%(%s*[\'"]([%w_]+)[\'"]')
   if q then out[#out + 1] = q end
   return out
end

-- The parameter list written on a function's first line: 'x, weight, bias, opts'.
function M.params_on(line)
   return line:match('function%s*[%w_%.:]*%s*%(([^)]*)%)')
end

local files = {}

-- Parses a file's doc comments once: {path, lines, blocks, by_line, by_name, module}.
function M.file(path)
   if files[path] ~= nil then return files[path] or nil end
   local f = io.open(path, 'r')
   if not f then files[path] = false return nil end
   local lines = {}
   for l in f:lines() do lines[#lines + 1] = l end
   f:close()
   local doc = {path = path, lines = lines, blocks = {}, by_line = {}, by_name = {}, plain = {}}
   -- the opening comment (every kbl file has one): the module's text
   local head = {}
   for i = 1, #lines do
      local c = lines[i]:match('^%-%-%-?%s?(.*)$')
      if not c then break end
      head[#head + 1] = c
   end
   doc.head = table.concat(head, '\n')
   local i = 1
   while i <= #lines do
      local first = lines[i]:match('^%s*%-%-%-%s?(.*)$')
      if first and not lines[i]:match('^%s*%-%-%-%-') then
         local text = {first}
         local j = i + 1
         -- to the first line that is not a comment, or starts the next doc comment
         while j <= #lines and lines[j]:match('^%s*%-%-') and not lines[j]:match('^%s*%-%-%-[^%-]') do
            text[#text + 1] = lines[j]:match('^%s*%-%-%-?%s?(.*)$')
            j = j + 1
         end
         local block = M.parse_block(text)
         block.file, block.first = path, i
         -- a file's opening comment written `--- ...` is the module's doc (LDoc's rule)
         -- (not indexed by the code line after it)
         if i == 1 then block.module = block.module or true end
         if i ~= 1 and j <= #lines and lines[j]:match('%S') then
            block.line = j
            block.code = lines[j]
            for _, n in ipairs(M.names_of(lines[j])) do
               doc.by_name[n] = doc.by_name[n] or block
               local short = n:match('[%.:]([%w_]+)$')
               if short then doc.by_name[short] = doc.by_name[short] or block end
            end
            doc.by_line[j] = block
         end
         if block.fn then
            doc.by_name[block.fn] = block
            local short = block.fn:match('[%.:]([%w_]+)$')
            if short then doc.by_name[short] = doc.by_name[short] or block end
         end
         if block.module and not doc.module then doc.module = block end
         doc.blocks[#doc.blocks + 1] = block
         i = j
      else
         -- a plain comment right above a line: shown when there is no doc comment
         if lines[i]:match('^%s*%-%-') and i > #head then
            local text, j = {}, i
            while j <= #lines and lines[j]:match('^%s*%-%-') and not lines[j]:match('^%s*%-%-%-') do
               text[#text + 1] = lines[j]:match('^%s*%-%-%s?(.*)$')
               j = j + 1
            end
            if j <= #lines and lines[j]:match('%S') and not lines[j]:match('^%s*%-%-') then
               doc.plain[j] = table.concat(text, '\n')
            end
            i = j
         else
            i = i + 1
         end
      end
   end
   files[path] = doc
   return doc
end

-- A doc comment's lines (without the dashes) -> {summary, text, params, returns, usage, options, ...}.
function M.parse_block(text)
   local b = {params = {}, returns = {}, options = {}, see = {}, usage = nil}
   local body, cur = {}, nil
   for _, l in ipairs(text) do
      local tag, rest = l:match('^%s*@([%w_]+)%s*(.*)$')
      if tag and TAGS[tag] then
         cur = nil
         if tag == 'param' or tag == 'tparam' then
            cur = param_of(tag, rest)
            b.params[#b.params + 1] = cur
         elseif tag == 'option' then
            cur = param_of(tag, rest)
            b.options[#b.options + 1] = cur
            b.options[cur.name or '?'] = cur
         elseif tag == 'return' or tag == 'treturn' then
            cur = param_of(tag, rest)
            b.returns[#b.returns + 1] = cur
         elseif tag == 'usage' then
            b.usage = rest ~= '' and {rest} or {}
            cur = 'usage'
         elseif tag == 'function' or tag == 'field' then
            b.fn = rest:match('^(%S+)')
         elseif tag == 'module' or tag == 'classmod' or tag == 'submodule' then
            b.module = rest:match('^(%S+)') or true
         elseif tag == 'see' then
            b.see[#b.see + 1] = rest
         elseif tag == 'local' then
            b['local'] = true
         end
      elseif cur == 'usage' then
         b.usage[#b.usage + 1] = l
      elseif type(cur) == 'table' and l:match('%S') then
         cur.text = cur.text .. ' ' .. l:gsub('^%s+', '')
      else
         body[#body + 1] = l
      end
   end
   while #body > 0 and not body[#body]:match('%S') do body[#body] = nil end
   b.text = table.concat(body, '\n')
   b.summary = b.text:match('^(.-%.)%s') or b.text:match('^[^\n]*')
   return b
end

-- The file module `name` loads from (package.path), or nil.
function M.module_path(name) return package.searchpath(name, package.path) end

return M
