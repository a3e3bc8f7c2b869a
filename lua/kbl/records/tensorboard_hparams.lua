--- kbl.records.tensorboard_hparams: a run's hyperparameters and final metrics
-- in the format of TensorBoard's hparams plugin, so that several runs compare
-- in its HParams tab. Three summaries, each a Value with only plugin data
-- (plugin_name 'hparams', content an HParamsPluginData):
--   _hparams_/experiment          Experiment { hparam_infos = 4; metric_infos = 5; }
--   _hparams_/session_start_info  SessionStartInfo { map<string, Value> hparams = 1;
--                                 string group_name = 4; double start_time_secs = 5; }
--   _hparams_/session_end_info    SessionEndInfo { Status status = 1; double end_time_secs = 2; }
-- HParamInfo { name = 1; type = 4 (1 string, 2 bool, 3 float64) }; MetricInfo
-- { MetricName name = 1 { group = 1; tag = 2 } }: a metric is a scalar tag of
-- the run ('loss/validation'), and the plugin shows its last value. The
-- field numbers are those of tensorboard/plugins/hparams/{api,plugin_data}.proto.
--
--   local hp = require 'kbl.records.tensorboard_hparams'
--   local params = hp.flatten(resolved_config)   -- {['optimizer.lr'] = 1e-3, ...}
--   writer:add_values({hp.experiment(params, {'loss/validation'}), hp.session_start(params, t)}, 0)
--   writer:add_values({hp.session_end('success', t)}, step)
local S = require 'kbl.config.spec'

local wire = require 'kbl.onnx.wire'
local key, len_delim, varint, double = wire.tag, wire.len_delim, wire.varint, wire.double

local M = {}

M.PLUGIN = 'hparams'
M.EXPERIMENT_TAG = '_hparams_/experiment'
M.SESSION_START_TAG = '_hparams_/session_start_info'
M.SESSION_END_TAG = '_hparams_/session_end_info'
M.STATUS = {unknown = 0, success = 1, failure = 2, running = 3}
M.MAX_PARAMS = 400   -- a config with more scalar keys keeps the first, by path

-- ---- the config's scalar keys -------------------------------------------------

local function is_scalar(v)
   local t = type(v)
   return (t == 'number' and v == v and v ~= math.huge and v ~= -math.huge) or t == 'string' or t == 'boolean'
end

local sorted_keys = require('kbl.util').sorted_keys

-- A list of scalars as one value: {256, 128} -> '{256, 128}'.
local function list_text(t)
   local n = 0
   for _ in pairs(t) do n = n + 1 end
   if n == 0 or n ~= #t then return nil end
   local parts = {}
   for i, v in ipairs(t) do
      if not is_scalar(v) then return nil end
      parts[i] = type(v) == 'string' and string.format('%q', v) or tostring(v)
   end
   return '{' .. table.concat(parts, ', ') .. '}'
end

-- The scalar values of a resolved config under their key paths, the paths
-- --set takes: {epochs = 10, optimizer = 'optim.Adam', ['optimizer.lr'] = 1e-3,
-- ['model.units'] = '{256, 128}'}. A spec gives its type name and its
-- arguments; refs, functions and other objects are left out, and so is the
-- sweep table (kbl run ignores it).
function M.flatten(cfg)
   local out = {}
   local function walk(v, path)
      if is_scalar(v) then
         if path ~= '' then out[path] = v end
         return
      end
      if S.is_ref(v) or type(v) ~= 'table' then return end
      local prefix = path == '' and '' or path .. '.'
      if S.is_spec(v) then
         if path ~= '' then out[path] = v.type end
         local arg = v:table_arg()   -- its keys are the spec's paths: blocks.Dense{4} -> model.2.1
         if arg then
            for _, k in ipairs(sorted_keys(arg)) do walk(arg[k], prefix .. tostring(k)) end
         else
            for i = 1, v.n do walk(v.args[i], prefix .. i) end
         end
         return
      end
      local text = path ~= '' and list_text(v)
      if text then out[path] = text; return end
      for _, k in ipairs(sorted_keys(v)) do
         if not (path == '' and k == 'sweep') then walk(v[k], prefix .. tostring(k)) end
      end
   end
   walk(cfg or {}, '')
   local names = sorted_keys(out)
   for i = M.MAX_PARAMS + 1, #names do out[names[i]] = nil end
   return out
end

-- ---- encoding -------------------------------------------------------------------

-- google.protobuf.Value { double number_value = 2; string string_value = 3; bool bool_value = 4; }
local function pb_value(v)
   if type(v) == 'number' then return key(2, 1) .. double(v) end
   if type(v) == 'boolean' then return key(4, 0) .. varint(v and 1 or 0) end
   return len_delim(3, tostring(v))
end

local function data_type(v)
   if type(v) == 'number' then return 3 end
   if type(v) == 'boolean' then return 2 end
   return 1
end

-- A Summary.Value holding HParamsPluginData (version 0) with the message in field.
local function plugin_value(tag, field, message)
   return {tag = tag, plugin_name = M.PLUGIN, content = len_delim(field, message)}
end

-- The experiment: the hparams (name and type) and the metrics (scalar tags).
function M.experiment(params, metric_tags)
   local parts = {}
   for _, name in ipairs(sorted_keys(params)) do
      parts[#parts + 1] = len_delim(4, len_delim(1, name) .. key(4, 0) .. varint(data_type(params[name])))
   end
   for _, tag in ipairs(metric_tags or {}) do
      parts[#parts + 1] = len_delim(5, len_delim(1, len_delim(2, tag)))
   end
   return plugin_value(M.EXPERIMENT_TAG, 2, table.concat(parts))
end

-- This run's values of the hparams, and when it started.
function M.session_start(params, start_time, group_name)
   local parts = {}
   for _, name in ipairs(sorted_keys(params)) do
      parts[#parts + 1] = len_delim(1, len_delim(1, name) .. len_delim(2, pb_value(params[name])))
   end
   if group_name and group_name ~= '' then parts[#parts + 1] = len_delim(4, group_name) end
   parts[#parts + 1] = key(5, 1) .. double(start_time)
   return plugin_value(M.SESSION_START_TAG, 3, table.concat(parts))
end

-- How the run ended: 'success', 'failure', 'running' or 'unknown'.
function M.session_end(status, end_time)
   local code = M.STATUS[status]
   if not code then error('tensorboard_hparams: unknown session status ' .. tostring(status), 2) end
   return plugin_value(M.SESSION_END_TAG, 4, key(1, 0) .. varint(code) .. key(2, 1) .. double(end_time))
end

return M
