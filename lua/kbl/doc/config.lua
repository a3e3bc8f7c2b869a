--- kbl.doc.config: the config keys as kbl.doc shows them, from
-- kbl.config.schema itself: the keys and their types from its tables and
-- checks, the words from the comments beside the keys (a trailing comment, the
-- comment lines right above a key, or `--   key: words` lines above a table).
local source = require 'kbl.doc.source'

local M = {}

local module_path = source.module_path


-- The words beside each key in schema.lua: a trailing comment, or comment
-- lines right above the key.
local function schema_words()
   local path = module_path('kbl.config.schema')
   local d = source.file(path)
   local words, table_of = {}, nil
   local above, before = {}, {}
   for i, l in ipairs(d.lines) do
      local t = l:match('^M%.([%u_]+)%s*=%s*{')
      if t then
         table_of = t; above = {}
         -- `--   key: words` lines in the comment above the table
         for _, c in ipairs(before) do
            local key, text = c.text:match('^%s+([%a_][%w_]*):%s+(.*)$')
            if key then words[t .. '.' .. key] = {text = text, line = c.line} end
         end
      end
      if not table_of then
         local c = l:match('^%-%-(.*)$')
         if c then before[#before + 1] = {text = c, line = i} else before = {} end
      end
      if table_of then
         local c = l:match('^%s*%-%-%s?(.*)$')
         if c then
            above[#above + 1] = c
         else
            for key, rest in l:gmatch('([%a_][%w_]*)%s*=%s*\'[%w_]+\'%s*,?([^\n]*)') do
               local trailing = rest:match('^%s*%-%-%s*(.*)$')
               local text = trailing
               if #above > 0 then text = table.concat(above, ' ') .. (trailing and (' ' .. trailing) or '') end
               local full = table_of .. '.' .. key
               if text or not words[full] then words[full] = {text = text, line = i} end
               -- only the first key of a line owns the comment
               above = {}
               if l:match(',%s*[%a_]') then break end
            end
            above = {}
            if l:match('^}') then table_of = nil end
         end
      end
   end
   return words, path
end

local SECTIONS = {
   {'TOP', 'config', 'The keys of an experiment config (kbl run, kbl check).'},
   {'STAGE', 'config.stages', 'The keys a stage may set; the rest come from the stage before it.'},
   {'TRAINER', 'config.trainer', 'kbl.fit options a script gives and a config does not.'},
   {'TENSORBOARD', 'config.tensorboard', 'The keys of the tensorboard table.'},
}

-- Every config key: {{name = 'config.epochs', type = 'posint', type_text = 'an integer >= 1', text, source}}.
function M.config_keys()
   local schema = require 'kbl.config.schema'
   local words, path = schema_words()
   local out = {}
   for _, sec in ipairs(SECTIONS) do
      local keys = require('kbl.util').sorted_keys(schema[sec[1]] or {}, {strings = true})
      for _, k in ipairs(keys) do
         local tname = schema[sec[1]][k]
         local w = words[sec[1] .. '.' .. k] or {}
         out[#out + 1] = {name = sec[2] .. '.' .. k, key = k, section = sec[2], type = tname,
            type_text = schema.TYPES[tname] and schema.TYPES[tname][2] or tname, text = w.text,
            source = path .. ':' .. (w.line or '?')}
      end
   end
   return out, SECTIONS
end

-- config, config.KEY, config.stages, config.stages.KEY, config.trainer.KEY
function M.config_entry(name)
   local keys, sections = M.config_keys()
   for _, sec in ipairs(sections) do
      if name == sec[2] then
         local list = {}
         for _, k in ipairs(keys) do if k.section == sec[2] then list[#list + 1] = k end end
         local e = {name = name, kind = 'config', text = sec[3], keys = list}
         -- config.stages is also a key of the config
         for _, k in ipairs(keys) do if k.name == name then e.key = k end end
         return e
      end
   end
   for _, k in ipairs(keys) do
      if k.name == name then return {name = name, kind = 'config', key = k} end
   end
   local names = {}
   for _, k in ipairs(keys) do names[#names + 1] = k.name end
   local near = require('kbl.config.schema').closest(name, names)
   return nil, "no such config key: '" .. name .. "'" .. (near and (" (did you mean '" .. near .. "'?)") or '')
end

return M
