--- kbl.data.csv: a numeric CSV file as a source, parsed in C (core/data_io.c).
--
--   data.csv{path = 'iris.csv', label = 'species', header = true, delimiter = ',',
--            num_classes = nil, validation = 0, test = 'iris_test.csv', regression = false}
--
-- label names a column (by header name, or position counting from 1; negative
-- from the end; default the last column). Labels in the file count from 0 and
-- must be whole numbers: the source holds int64 labels 1..C (C = num_classes,
-- or the largest label + 1). With regression = true the column is a float32
-- target, unchanged; with label = false there is no y. Every other column is a
-- float32 feature. Blank lines are skipped; fields are numbers (surrounding
-- blanks and double quotes are dropped).
local ffi = require 'ffi'
local kbl = require 'kbl'
local lib = require 'kbl.lib'
local B = require 'kbl.data.base'
local Source = require 'kbl.data.source'
local check_options = require 'kbl.options'
local C = lib.C

local function header_names(path, delim)
   local f = assert(io.open(path, 'rb'))
   local line = f:read('*l') or ''
   while line:match('^%s*$') do
      local nl = f:read('*l')
      if not nl then break end
      line = nl
   end
   f:close()
   line = line:gsub('^\239\187\191', ''):gsub('\r$', '')
   local names, start = {}, 1
   while true do
      local i = line:find(delim, start, true)
      local field = line:sub(start, (i or 0) - 1)
      names[#names + 1] = field:match('^%s*"?(.-)"?%s*$')
      if not i then break end
      start = i + 1
   end
   return names
end

-- The line of each data row: the file's lines that are neither blank nor the header.
local function row_lines(path, header)
   local lines, n, skipped = {}, 0, not header
   for line in io.lines(path) do
      n = n + 1
      if not line:match('^%s*$') then
         if skipped then lines[#lines + 1] = n else skipped = true end
      end
   end
   return lines
end

local function read(o, path)
   local delim = o.delimiter or ','
   if type(delim) ~= 'string' or #delim ~= 1 then error('data.csv: delimiter must be one character', 3) end
   local header = o.header ~= false
   local t = B.check(C.kbl_data_csv_read(path, delim:byte(), header and 1 or 0))
   local cols = t:size(2)
   local label = o.label
   local col
   if label == false then
      col = nil
   elseif label == nil then
      col = cols
   elseif type(label) == 'string' then
      if not header then error("data.csv: label = '" .. label .. "' names a column, but header = false", 3) end
      local names = header_names(path, delim)
      for i, name in ipairs(names) do if name == label then col = i end end
      if not col then
         error(string.format("data.csv: %s has no column '%s' (columns: %s)", path, label,
            table.concat(names, ', ')), 3)
      end
   elseif type(label) == 'number' and label % 1 == 0 and label ~= 0 and math.abs(label) <= cols then
      col = label > 0 and label or cols + 1 + label
   else
      error(string.format('data.csv: label %s is not a column of %s (%d columns, counting from 1)', tostring(label),
         path, cols), 3)
   end
   local keep = {}
   for i = 1, cols do if i ~= col then keep[#keep + 1] = i end end
   if #keep == 0 then error('data.csv: ' .. path .. ' has no feature columns besides the label', 3) end
   local x = t:index_select(2, keep):to('float32')
   local y
   if col then
      local yv = t:select(2, col):contiguous()
      if o.regression then
         y = yv:to('float32')
      else
         local n, nc = yv:size(1), o.num_classes or 0
         local p = ffi.cast('double *', yv:data_ptr())
         local lines
         for i = 0, n - 1 do
            local v = p[i]
            local bad = (v % 1 ~= 0 and 'is not a whole number') or (v < 0 and 'is negative')
               or (nc > 0 and v >= nc and 'is out of range')
            if bad then
               lines = lines or row_lines(path, header)
               error(string.format('data.csv: %s:%d: label %g %s: labels in the file count from 0%s', path,
                  lines[i + 1] or -1, v, bad, nc > 0 and (' and must be below ' .. nc .. ' (num_classes)') or ''), 0)
            end
         end
         y = kbl.add(yv:to('int64'), 1)
      end
   end
   return x, y
end

--- A numeric CSV file as a source (parsed in C). Labels in the file count from 0 and
-- become int64 1..C; every other column is a float32 feature.
-- @tparam table o {path, label = the last column (a header name, or a position from 1, negative from the end;
-- false: no y), header = true, delimiter = ',', num_classes = the largest label + 1, validation = 0 (rows
-- carved from the end of train), test = nil (another file), regression = false (the label a float32 target)}
-- @treturn table a source
-- @usage local src = data.csv{path = 'iris.csv', label = 'species', validation = 30}
return function(o)
   if type(o) == 'string' then o = {path = o} end
   if type(o) ~= 'table' or type(o.path) ~= 'string' then error('data.csv: expects {path = ..., label = ...}', 2) end
   check_options('data.csv', o, {'path', 'label', 'header', 'delimiter', 'num_classes', 'class_names', 'validation',
      'test', 'regression', 'name'})
   local name = o.name or o.path:match('([^/]+)$')
   local x, y = read(o, o.path)
   local splits = {train = B.new{x = x, y = y, name = name .. '/train'}}
   if o.test then
      local tx, ty = read(o, o.test)
      splits.test = B.new{x = tx, y = ty, name = name .. '/test'}
   end
   local meta = {}
   if y and not o.regression then
      local top = y:max():item()
      if splits.test then top = math.max(top, splits.test.y:max():item()) end
      meta.num_classes = o.num_classes or top
   end
   meta.class_names = o.class_names
   splits = Source.carve(splits, o.validation, name)
   return Source.new{name = name, splits = splits, meta = meta}
end
