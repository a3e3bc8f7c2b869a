--- kbl.callbacks.loggers: the epoch logs written to files as the run goes:
-- CSVLogger (one row per epoch, columns fixed by the first row or by the
-- header of a file being appended to) and JSONLinesLogger (one JSON object a
-- line). Each line is written and the file closed at once, so a killed run
-- leaves every finished epoch on disk.
local json = require 'dkjson'
local base = require 'kbl.callbacks.base'

local M = {}

local FIRST = {epoch = 1, step = 2, stage = 3, loss = 4}
local LAST = {lr = 1, time = 2, samples_per_sec = 3, time_data = 4, time_forward = 5, time_backward = 6,
   time_update = 7, time_validation = 8}

-- Column order: epoch, step, stage, loss, metrics, val_*, lr, timings.
function M.order(keys)
   table.sort(keys, function(a, b)
      local fa, fb = FIRST[a], FIRST[b]
      if fa or fb then return (fa or 99) < (fb or 99) end
      local la, lb = LAST[a], LAST[b]
      if la or lb then return (la or 0) < (lb or 0) end
      local va, vb = a:match('^val_') ~= nil, b:match('^val_') ~= nil
      if va ~= vb then return vb end
      if a == 'val_loss' or b == 'val_loss' then return a == 'val_loss' and b ~= 'val_loss' end
      return a < b
   end)
   return keys
end

local function scalar_keys(logs)
   local keys = {}
   for k, v in pairs(logs) do
      if type(k) == 'string' and (type(v) == 'number' or type(v) == 'string' or type(v) == 'boolean') then
         keys[#keys + 1] = k
      end
   end
   return M.order(keys)
end

local function resolve_path(self, ctx, default)
   local p = self.path
   if p == nil then
      if not ctx.run_dir then error(self.name .. ': give a path (there is no run directory)', 0) end
      return ctx.run_dir .. '/' .. default
   end
   return (p:gsub('{run_dir}', ctx.run_dir or '.'))
end

local function csv_field(v)
   if type(v) == 'number' then
      if v % 1 == 0 and math.abs(v) < 2^53 then return string.format('%d', v) end
      return string.format('%.10g', v)
   end
   local s = tostring(v)
   if s:find('[,"\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
   return s
end

-- On a resumed run, keeps the lines of the epochs finished before the resume
-- point (they are not run again) and drops the rest.
local function keep_finished(path, epochs_done, epoch_of)
   local kept = {}
   for line in io.lines(path) do
      local e = epoch_of(line, #kept)
      if e == nil or e <= epochs_done then kept[#kept + 1] = line end
   end
   local out = assert(io.open(path, 'w'))
   for _, l in ipairs(kept) do out:write(l, '\n') end
   out:close()
end

local function readable(path)
   local f = io.open(path, 'r')
   if f then f:close() end
   return f ~= nil
end

--- Writes each epoch's logs as a CSV row.
-- @option path the file (default RUN_DIR/metrics.csv)
-- @option append whether to add to an existing file
-- @option separator the field separator
-- @usage callbacks.CSVLogger{path = 'log.csv'}
M.CSVLogger = base.define('CSVLogger', {append = false, separator = ','}, {
   on_train_begin = function(self, ctx)
      self.file = resolve_path(self, ctx, 'metrics.csv')
      if readable(self.file) and (self.append or ctx.resumed) then
         local f = assert(io.open(self.file, 'r'))
         local header = f:read('*l')
         f:close()
         if header then
            self.columns = {}
            for c in header:gmatch('[^' .. self.separator .. ']+') do self.columns[#self.columns + 1] = c end
            if ctx.resumed and self.columns[1] == 'epoch' then
               keep_finished(self.file, ctx.epochs_done, function(line, n)
                  if n == 0 then return nil end
                  return tonumber(line:match('^[^' .. self.separator .. ']*'))
               end)
            end
         end
      else
         local out = assert(io.open(self.file, 'w'))
         out:close()
      end
   end,
   on_epoch_end = function(self, _ctx, _epoch, logs)
      local out = assert(io.open(self.file, 'a'))
      if not self.columns then
         self.columns = scalar_keys(logs)
         out:write(table.concat(self.columns, self.separator), '\n')
      end
      local row = {}
      for i, c in ipairs(self.columns) do row[i] = logs[c] ~= nil and csv_field(logs[c]) or '' end
      out:write(table.concat(row, self.separator), '\n')
      out:close()
   end,
}, {optional = {'path'}})

--- Writes each epoch's logs as a JSON line: every value, per-class metrics too; NaN and infinities as null.
-- @option path the file (default RUN_DIR/metrics.jsonl)
-- @option append whether to add to an existing file
-- @usage callbacks.JSONLinesLogger{path = 'log.jsonl'}
M.JSONLinesLogger = base.define('JSONLinesLogger', {append = false}, {
   on_train_begin = function(self, ctx)
      self.file = resolve_path(self, ctx, 'metrics.jsonl')
      if ctx.resumed and readable(self.file) then
         keep_finished(self.file, ctx.epochs_done, function(line)
            local obj = json.decode(line)
            if type(obj) == 'table' and obj.split then return math.huge end   -- a test line: evaluated again
            return type(obj) == 'table' and obj.epoch or nil
         end)
      elseif not self.append then
         local out = assert(io.open(self.file, 'w'))
         out:close()
      end
   end,
   on_epoch_end = function(self, _ctx, _epoch, logs)
      local clean = {}
      for k, v in pairs(logs) do
         if type(v) == 'number' and (v ~= v or v == math.huge or v == -math.huge) then v = json.null end
         clean[k] = v
      end
      local keys = {}
      for k in pairs(clean) do keys[#keys + 1] = k end
      local out = assert(io.open(self.file, 'a'))
      out:write(json.encode(clean, {keyorder = M.order(keys)}), '\n')
      out:close()
   end,
}, {optional = {'path'}})

return M
