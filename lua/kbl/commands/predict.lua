--- kbl predict RUN_DIR|model.onnx --input FILE: runs a model, pre- and
-- post-processing included, on the rows of a file as the data stores them:
-- .npy, IDX (MNIST-style, gzip or not), CSV (numbers; a header line is skipped)
-- or images (PNG, JPEG, BMP through stb_image; several --input images make a
-- batch). Prints a line a row (for class outputs: the class from 1, its name,
-- its score), or --json, or writes the outputs with --output FILE.npy.
--
-- A model.onnx must be one kbl exported: kbl runs it with its own ops
-- (kbl/onnx/runtime.lua), not through onnxruntime; a file from elsewhere, or
-- with an operator kbl does not write, is refused with a message naming it.
-- Inputs must have the model's dtype (uint8 images for the examples) and its
-- per-row shape, or the same number of values per row (IDX [N, 28, 28] for
-- [N, 1, 28, 28]); CSV values are converted when they fit the dtype exactly.
local M = {summary = 'Run a run directory\'s model or an exported model.onnx on a file of inputs.'}

function M.describe(cmd)
   cmd:argument('model', 'A run directory (kbl run) or an ONNX file kbl exported.')
   cmd:option('--input', 'Input file: .npy, IDX, CSV, PNG/JPEG/BMP (repeat for several images).')
      :count('+'):argname('<file>')
   cmd:option('--output', 'Write the outputs to this .npy file instead of printing them.')
   cmd:flag('--json', 'Print the predictions as one JSON array.')
   cmd:option('--batch', 'Rows per forward pass (default: the run\'s eval batch size, else 256).')
      :convert(tonumber)
end

local IMAGE = {png = true, jpg = true, jpeg = true, bmp = true}

local function is_onnx(path) return path:lower():match('%.onnx$') ~= nil end

-- The model as {run = fn(x) -> y, dtype =, row = {sizes after the batch dim}, class_names =, batch =}.
local function open_model(path)
   local fs = require 'kbl.io.fs'
   if fs.is_dir(path) then
      local r = require('kbl.onnx.run_model').load(path)
      local row = r.example:size()
      table.remove(row, 1)
      local tr = r.trainer
      local predict = require('kbl.onnx.run_model').predict
      return {run = function(x) return predict(r.model, x) end, dtype = r.example.dtype, row = row,
         class_names = r.class_names, batch = tr.eval_batch_size or tr.batch_size}
   end
   if not fs.exists(path) then error('cannot open ' .. path .. ' (give a run directory or a .onnx file)', 0) end
   if not is_onnx(path) then error(path .. ' is neither a run directory nor a .onnx file', 0) end
   local rt = require('kbl.onnx.runtime').load(path)
   local row = {}
   for i = 2, #rt.input.shape do
      local d = rt.input.shape[i]
      if type(d) ~= 'number' then error(path .. ': input dim ' .. i .. ' is not fixed (' .. tostring(d) .. ')', 0) end
      row[#row + 1] = d
   end
   local names
   if rt.metadata.class_names then names = require('dkjson').decode(rt.metadata.class_names) end
   return {run = function(x) return rt:run(x) end, dtype = rt.input.dtype, row = row, class_names = names}
end

local function read_csv(path)
   local lib = require 'kbl.lib'
   local f = io.open(path, 'rb')
   if not f then error('cannot open ' .. path, 0) end
   local first = f:read('*l') or ''
   f:close()
   local header = first:match('[%a_]') and not first:match('^[%s%d%.,;eE+%-]*$') and 1 or 0
   return require('kbl.data.base').check(lib.C.kbl_data_csv_read(path, (','):byte(), header))
end

local function read_image(path, channels)
   return require('kbl.data.base').check(require('kbl.lib').C.kbl_data_image_read(path, channels))
end

local function shape_text(s) return '[' .. table.concat(s, ', ') .. ']' end

-- Converts CSV values (float64) to the model's dtype when each fits exactly.
local function convert_csv(x, dtype, path)
   if dtype == 'float32' or dtype == 'float64' then return x:to(dtype) end
   local y = x:to(dtype)
   if x:numel() > 0 and (y:to('float64') - x):abs():max():item() ~= 0 then
      error(string.format('%s: the model takes %s values and the file holds values that are not (fractions or out '
         .. 'of range)', path, dtype), 0)
   end
   return y
end

-- The file's rows as one tensor [N, row...] of the model's dtype.
local function read_input(files, m)
   local kbl = require 'kbl'
   local fs = require 'kbl.io.fs'
   local parts = {}
   for _, path in ipairs(files) do
      if not fs.exists(path) then error('input ' .. path .. ': no such file', 0) end
      local ext = (path:match('%.([%w]+)$') or ''):lower()
      local x
      if ext == 'npy' then
         x = require('kbl.io.npy').load(path)
      elseif ext == 'csv' then
         x = convert_csv(read_csv(path), m.dtype, path)
      elseif IMAGE[ext] then
         local ch = #m.row == 3 and m.row[1] or 1
         if ch ~= 1 and ch ~= 3 then error(path .. ': the model takes ' .. ch .. '-channel input, not an image', 0) end
         x = read_image(path, ch):unsqueeze(1)
      else   -- IDX, by its contents (any name, .gz too)
         local ok, t = pcall(require('kbl.data.idx').read, path)
         if not ok then
            error(string.format('input %s: not a .npy, .csv or image file, and not IDX either (%s)', path,
               tostring(t)), 0)
         end
         x = t
      end
      if x.dtype ~= m.dtype then
         error(string.format('input %s: holds %s values; the model takes %s %s (as its data stores them)', path,
            x.dtype, m.dtype, shape_text({'N', unpack(m.row)})), 0)
      end
      local per = 1
      for _, s in ipairs(m.row) do per = per * s end
      local size, numel = x:size(), x:numel()
      local single = #size == #m.row
      for i = 1, #size do single = single and size[i] == m.row[i] end
      local rows = single and 1 or size[1]   -- one example without its batch dim, or rows
      if not rows or rows * per ~= numel then
         error(string.format('input %s: shape %s does not fit the model\'s input %s', path, shape_text(size),
            shape_text({'N', unpack(m.row)})), 0)
      end
      parts[#parts + 1] = x:contiguous():reshape({rows, unpack(m.row)})
   end
   return #parts == 1 and parts[1] or kbl.cat(parts, 1)
end

local function print_rows(y, names, as_json)
   local classes = y:dim() == 2 and y:size(2) > 1
   local rows = {}
   local values = y:to('float64'):tolist()
   local idx = classes and y:argmax(2):tolist() or nil
   for i = 1, #values do
      local r = {index = i}
      if classes then
         r.class = idx[i]
         r.name = names and names[idx[i]] or nil
         r.score = values[i][idx[i]]
      end
      r.output = values[i]
      rows[i] = r
   end
   if as_json then
      local json = require 'dkjson'
      print(json.encode(rows, {keyorder = {'index', 'class', 'name', 'score', 'output'}}))
      return
   end
   for _, r in ipairs(rows) do
      if classes then
         print(string.format('%d\t%d\t%s\t%.6g', r.index, r.class, r.name or '', r.score))
      else
         local out = type(r.output) == 'table' and r.output or {r.output}
         local txt = {}
         for k, v in ipairs(out) do txt[k] = type(v) == 'number' and string.format('%.6g', v) or '...' end
         print(r.index .. '\t' .. table.concat(txt, ' '))
      end
   end
end

function M.run(args)
   local kbl = require 'kbl'
   local clock = require 'kbl.clock'
   local m = open_model(args.model)
   local x = read_input(args.input, m)
   local bs = args.batch or m.batch or 256
   if bs < 1 or bs % 1 ~= 0 then error('--batch must be a positive whole number', 0) end
   local n = x:size(1)
   local outs = {}
   local t0 = clock.now()
   for i = 1, n, bs do
      local len = math.min(bs, n - i + 1)
      outs[#outs + 1] = kbl.keep(m.run(x:narrow(1, i, len):contiguous()))
   end
   local secs = clock.now() - t0
   local y = #outs == 1 and outs[1] or kbl.cat(outs, 1)
   io.stderr:write(string.format('predict: %d rows in %.3f s (%.0f rows/s, batch %d)\n', n, secs,
      n / math.max(secs, 1e-9), bs))
   if args.output then
      require('kbl.io.npy').save(args.output, y)
   else
      print_rows(y, m.class_names, args.json)
   end
end

return M
