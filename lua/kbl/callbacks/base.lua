--- kbl.callbacks.base: what the callbacks share: a constructor with checked
-- options, and the monitored-quantity rules (mode, improvement).
local schema = require 'kbl.config.schema'

local M = {}

local util = require 'kbl.util'
local STRINGS = {strings = true}   -- sorted_keys: string keys only

--- Makes a callback type with checked options: unknown ones name the closest.
-- @tparam string name the type's name
-- @tparam table defaults the options and their defaults
-- @tparam table methods the hooks and methods (init(self) runs after the options are set)
-- @tparam[opt] table how {positional = 'key' (the first positional argument), optional = {keys without a default}}
-- @treturn table the type, called with a table of options
-- @usage local Print = callbacks.define('Print', {every = 1}, {on_epoch_end = function(self, ctx, e) print(e) end})
function M.define(name, defaults, methods, how)
   how = how or {}
   methods.__index = methods
   methods.__tostring = methods.__tostring or function() return 'callbacks.' .. name end
   local valid = util.sorted_keys(defaults, STRINGS)
   for _, k in ipairs(how.optional or {}) do valid[#valid + 1] = k end
   local allowed = {}
   for _, k in ipairs(valid) do allowed[k] = true end
   local cls = {name = name, defaults = defaults}
   return setmetatable(cls, {__call = function(_, opts)
      opts = opts or {}
      if type(opts) ~= 'table' then error(string.format('callbacks.%s expects a table of options', name), 2) end
      local o = setmetatable({name = name}, methods)
      for k, v in pairs(defaults) do o[k] = v end
      for k, v in pairs(opts) do
         local key = k
         if k == 1 and how.positional then key = how.positional end
         if not allowed[key] then
            error(string.format("callbacks.%s: unknown option '%s' (did you mean '%s'?)", name, tostring(k),
               schema.closest(tostring(k), valid) or '?'), 2)
         end
         o[key] = v
      end
      if methods.init then o:init() end
      return o
   end})
end

--- The mode a monitored quantity improves in: 'max' for accuracies, F1 and the like, else 'min'.
-- @tparam string monitor
-- @tparam[opt] string mode a given mode other than 'auto' wins
-- @treturn string 'min' or 'max'
-- @usage callbacks.auto_mode('val_accuracy')  -- 'max'
function M.auto_mode(monitor, mode)
   if mode and mode ~= 'auto' then return mode end
   local m = monitor:gsub('^val_', '')
   for _, w in ipairs{'acc', 'f1', 'precision', 'recall', 'auc', 'iou'} do
      if m:find(w, 1, true) then return 'max' end
   end
   return 'min'
end

--- Whether v improves on best by more than min_delta in mode.
-- @tparam number v
-- @tparam[opt] number best nil: anything improves
-- @tparam string mode 'min' or 'max'
-- @tparam[opt=0] number min_delta
-- @treturn boolean
-- @usage callbacks.improves(0.5, 0.6, 'min')  -- true
function M.improves(v, best, mode, min_delta)
   if best == nil then return true end
   if mode == 'max' then return v > best + (min_delta or 0) end
   return v < best - (min_delta or 0)
end

--- The monitored value in logs, or nil with a warning (once per callback) listing the keys there are.
-- @tparam table cb the callback (its monitor and name)
-- @tparam table logs
-- @treturn number or nil
-- @usage local v = callbacks.monitored(self, logs)
function M.monitored(cb, logs)
   local v = logs[cb.monitor]
   if type(v) ~= 'number' then
      if not cb.warned then
         cb.warned = true
         io.stderr:write(string.format("warning: %s monitors '%s', which is not in the logs (they have: %s)\n",
            cb.name, cb.monitor, table.concat(util.sorted_keys(logs, STRINGS), ', ')))
      end
      return nil
   end
   return v
end

M.mkdir_p = require('kbl.io.fs').mkdir_p

return M
