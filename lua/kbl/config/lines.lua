--- kbl.config.lines: finds the line on which a config file sets each key path,
-- so that an error can name "file:line". A table constructor built at run time
-- does not remember where its fields came from, so this reads the source: a
-- small tokenizer follows the returned table constructor (and statements such
-- as `c.optimizer.lr = 3e-4`) and records `path -> line` for every field.
-- A spec call (`blocks.Dense{units = 10}`) maps its argument table onto the
-- same path, as config paths go through a spec into its arguments.
local M = {}

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
   repeat return then true until while]]):gmatch('%a+') do KEYWORDS[w] = true end

-- Splits Lua source into tokens {kind, text, line}; kinds: name, keyword,
-- string, number, op. Comments and whitespace are dropped.
function M.tokenize(src)
   local toks, i, line, n = {}, 1, 1, #src
   local function push(kind, text, l) toks[#toks + 1] = {kind = kind, text = text, line = l} end
   while i <= n do
      local c = src:sub(i, i)
      if c == '\n' then
         line = line + 1
         i = i + 1
      elseif c:match('%s') then
         i = i + 1
      elseif src:sub(i, i + 1) == '--' then
         local eq = src:match('^%[(=*)%[', i + 2)
         local stop
         if eq then
            stop = select(2, src:find(']' .. eq .. ']', i, true)) or n
         else
            stop = (src:find('\n', i, true) or n + 1) - 1
         end
         local _, nl = src:sub(i, stop):gsub('\n', '')
         line = line + nl
         i = stop + 1
      elseif c == '"' or c == "'" then
         local j, start = i + 1, line
         while j <= n do
            local d = src:sub(j, j)
            if d == '\\' then
               if src:sub(j + 1, j + 1) == '\n' then line = line + 1 end
               j = j + 2
            elseif d == c then break
            else
               if d == '\n' then line = line + 1 end
               j = j + 1
            end
         end
         push('string', src:sub(i + 1, j - 1), start)
         i = j + 1
      elseif c == '[' and src:match('^%[=*%[', i) then
         local eq = src:match('^%[(=*)%[', i)
         local stop = select(2, src:find(']' .. eq .. ']', i, true)) or n
         local text = src:sub(i, stop)
         push('string', text, line)
         local _, nl = text:gsub('\n', '')
         line = line + nl
         i = stop + 1
      elseif c:match('[%a_]') then
         local w = src:match('^[%w_]+', i)
         push(KEYWORDS[w] and 'keyword' or 'name', w, line)
         i = i + #w
      elseif c:match('%d') or (c == '.' and src:sub(i + 1, i + 1):match('%d')) then
         local num = src:match('^0[xX][%x%.]+', i) or src:match('^[%d%.]+[eE][%+%-]?%d+', i)
            or src:match('^[%d%.]+', i)
         push('number', num, line)
         i = i + #num
      else
         local op = src:match('^%.%.%.', i) or src:match('^[=~<>]=', i) or src:match('^%.%.', i)
            or src:match('^::', i) or c
         push('op', op, line)
         i = i + #op
      end
   end
   return toks
end

local BLOCK_OPEN = {['function'] = true, ['if'] = true, ['do'] = true, ['repeat'] = true}
local BLOCK_CLOSE = {['end'] = true, ['until'] = true}

-- Returns {['a.b.c'] = line} for the fields the file sets. Paths use numbers
-- for positional items ('model.2.units').
function M.key_lines(src)
   local ok, toks = pcall(M.tokenize, src)
   if not ok then return {} end
   local lines = {}
   local function record(path, line)
      if lines[path] == nil then lines[path] = line end
   end
   -- frames: {kind = 'table', path, pos, key, opened} | {kind = 'paren'} | {kind = 'block'}
   local stack = {}
   local function top() return stack[#stack] end
   local function join(prefix, key)
      return prefix == '' and tostring(key) or prefix .. '.' .. tostring(key)
   end
   local i, n = 1, #toks
   local at_item = false        -- the next token starts an item of the top table frame
   local pending_path           -- path for the next '{' at statement level
   while i <= n do
      local t = toks[i]
      local fr = top()
      if fr and fr.kind == 'table' and at_item and not (t.kind == 'op' and t.text == '}') then
         -- the start of an item: `name =`, `[k] =` or a positional value
         at_item = false
         fr.opened = false
         local t2, t3, t4 = toks[i + 1], toks[i + 2], toks[i + 3]
         if t.kind == 'name' and t2 and t2.kind == 'op' and t2.text == '=' then
            fr.key = t.text
            record(join(fr.path, fr.key), t.line)
            i = i + 2
         elseif t.kind == 'op' and t.text == '[' and t2 and (t2.kind == 'string' or t2.kind == 'number')
            and t3 and t3.text == ']' and t4 and t4.text == '=' then
            fr.key = t2.kind == 'number' and tonumber(t2.text) or t2.text
            record(join(fr.path, fr.key), t.line)
            i = i + 4
         else
            fr.pos = fr.pos + 1
            fr.key = fr.pos
            record(join(fr.path, fr.key), t.line)
         end
         t = toks[i]
         if not t then break end
      end
      do
         if t.kind == 'op' and t.text == '{' then
            local path
            if fr and fr.kind == 'table' then
               if not fr.opened then path = join(fr.path, fr.key) end
               fr.opened = true
            elseif fr and fr.kind == 'paren' then
               local outer = fr.table_frame
               if outer and not outer.opened then path = join(outer.path, outer.key) end
               if outer then outer.opened = true end
            elseif not fr then
               path = pending_path
               pending_path = nil
            end
            stack[#stack + 1] = {kind = 'table', path = path or '\0', pos = 0}
            at_item = true
         elseif t.kind == 'op' and t.text == '}' then
            if fr and fr.kind == 'table' then stack[#stack] = nil end
            at_item = false
         elseif t.kind == 'op' and (t.text == '(' or t.text == '[') then
            local tf = fr and (fr.kind == 'table' and fr or fr.table_frame) or nil
            stack[#stack + 1] = {kind = 'paren', table_frame = tf}
         elseif t.kind == 'op' and (t.text == ')' or t.text == ']') then
            if fr and fr.kind == 'paren' then stack[#stack] = nil end
         elseif t.kind == 'keyword' and BLOCK_OPEN[t.text] then
            stack[#stack + 1] = {kind = 'block'}
         elseif t.kind == 'keyword' and BLOCK_CLOSE[t.text] then
            if fr and fr.kind == 'block' then stack[#stack] = nil end
         elseif t.kind == 'op' and (t.text == ',' or t.text == ';') then
            if fr and fr.kind == 'table' then at_item = true end
         elseif not fr and t.kind == 'keyword' and t.text == 'return' then
            pending_path = ''
         elseif not fr and t.kind == 'keyword' and t.text == 'local' then
            -- `local c = {` : the config table built in steps
            local t2, t3 = toks[i + 1], toks[i + 2]
            if t2 and t2.kind == 'name' and t3 and t3.text == '=' then
               pending_path = ''
               i = i + 2
            end
         elseif not fr and t.kind == 'name' then
            -- `c.a.b = value` at statement level: path a.b
            local parts, j = {}, i + 1
            while toks[j] and toks[j].text == '.' and toks[j + 1] and toks[j + 1].kind == 'name' do
               parts[#parts + 1] = toks[j + 1].text
               j = j + 2
            end
            if #parts > 0 and toks[j] and toks[j].text == '=' then
               local path = table.concat(parts, '.')
               record(path, t.line)
               pending_path = path
               i = j
            end
         end
      end
      i = i + 1
   end
   -- '\0' marks tables whose path is unknown; drop what lies under them
   for k in pairs(lines) do
      if k:find('\0', 1, true) then lines[k] = nil end
   end
   return lines
end

return M
