--- kbl.doc.coverage: the public API, enumerated from the module tables, the
-- block types' option lists and the config schema, and what of it lacks
-- documentation (spec/doc_coverage_spec.lua, `kbl doc --missing`).
local doc = require 'kbl.doc'

local M = {}


local function sorted(t)
   return require('kbl.util').sorted_keys(t, {strings = true})
end

local function is_internal(e) return e and e.block and e.block['local'] end

-- Every public name with its entry: {name, entry, options = {names without words}}.
-- Public: the functions and types of kbl, kbl.cuda, kbl.memory, Tensor methods
-- (those that are not also kbl functions), kbl.data and its Pipeline and Source
-- methods, kbl.optim (optimizers, schedules, Optimizer methods), blocks (types,
-- their options, Block methods), callbacks (and their options), losses,
-- metrics, kbl.fit, and every config key. Names whose doc says @local are left out.
function M.public()
   local out = {}
   local function add(name, v, parent, key)
      local e = doc.entry(v, name, parent, key)
      if not is_internal(e) then out[#out + 1] = {name = name, entry = e, value = v} end
   end
   local function functions_of(prefix, t, sep, skip)
      for _, k in ipairs(sorted(t)) do
         local v = rawget(t, k)
         if type(v) == 'function' and k:sub(1, 1) ~= '_' and not (skip and skip[k]) then
            add(prefix .. (sep or '.') .. k, v, t, k)
         end
      end
   end
   local kbl = require 'kbl'
   functions_of('kbl', kbl)
   -- the modules kbl carries (kbl.cuda, kbl.memory, kbl.dist, ...), not its FFI binding
   for _, k in ipairs(sorted(kbl)) do
      local v = kbl[k]
      if type(v) == 'table' and k ~= 'lib' and doc.module_name_of(v) then functions_of('kbl.' .. k, v) end
   end
   local in_kbl = {}
   for _, v in pairs(kbl) do in_kbl[v] = true end
   local T = require 'kbl.tensor'
   local skip = {}
   for k, v in pairs(T.methods) do if in_kbl[v] then skip[k] = true end end
   functions_of('Tensor', T.methods, ':', skip)
   -- data
   local data = require 'kbl.data'
   for _, k in ipairs(sorted(data)) do
      local v = data[k]
      if type(v) == 'function' or (type(v) == 'table' and getmetatable(v) and getmetatable(v).__call) then
         add('data.' .. k, v, data, k)
      end
   end
   functions_of('data.Pipeline', data.Pipeline, ':')
   functions_of('data.Source', data.Source, ':')
   -- optim
   local optim = require 'kbl.optim'
   for _, k in ipairs(sorted(optim)) do
      local v = optim[k]
      if k ~= 'schedules' and k ~= 'Optimizer' then add('optim.' .. k, v, optim, k) end
   end
   functions_of('optim.Optimizer', optim.Optimizer, ':')
   functions_of('optim.schedules', optim.schedules)
   -- blocks
   local blocks = require 'kbl.blocks'
   functions_of('blocks', blocks)
   functions_of('blocks.Block', blocks.Block, ':')
   for _, tn in ipairs(blocks.types) do
      add('blocks.' .. tn, blocks[tn], blocks, tn)
      -- a type's own methods (Model:predict, Sequential:append), not the hooks every type fills
      local own = {init = true, build = true, forward = true}
      for k, v in pairs(blocks.Block) do if type(v) == 'function' then own[k] = true end end
      functions_of('blocks.' .. tn, blocks[tn], ':', own)
   end
   -- callbacks, losses, metrics
   for _, modname in ipairs{'callbacks', 'losses', 'metrics'} do
      local m = require(doc.ROOTS[modname])
      for _, k in ipairs(sorted(m)) do
         local v = m[k]
         if type(v) == 'function' or type(v) == 'table' then add(modname .. '.' .. k, v, m, k) end
      end
   end
   local fit = require 'kbl.fit'
   functions_of('fit', fit)
   if type(fit.Trainer_class) == 'table' then functions_of('fit.Trainer', fit.Trainer_class, ':') end
   for _, k in ipairs(doc.config_keys()) do
      out[#out + 1] = {name = k.name, entry = {name = k.name, kind = 'config', key = k}}
   end
   return out
end

-- What lacks documentation: names without a doc comment (or whose doc comment
-- has no @usage example), options without @option words, config keys without a
-- comment in the schema. Sorted list of strings.
function M.undocumented()
   local missing = {}
   for _, p in ipairs(M.public()) do
      local e = p.entry
      if e.kind == 'config' then
         if not e.key.text then missing[#missing + 1] = p.name end
      else
         if not e.block or e.block.text == '' then
            missing[#missing + 1] = p.name
         elseif e.kind ~= 'module' and not e.block.module and not (e.block.usage and #e.block.usage > 0) then
            missing[#missing + 1] = p.name .. ' (no @usage example)'
         end
         for _, o in ipairs(e.options or {}) do
            if not o.text then missing[#missing + 1] = p.name .. '.' .. o.name .. ' (option)' end
         end
      end
   end
   table.sort(missing)
   return missing
end

return M
