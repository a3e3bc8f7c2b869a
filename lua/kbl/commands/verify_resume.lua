--- kbl verify-resume CONFIG... --steps N: proves exact resume on a config. Trains
-- N steps straight; then trains N/2 steps, writes a checkpoint, throws that
-- trainer away, resumes a fresh one from the checkpoint file and trains to N.
-- Every tensor (model weights, optimizer state) must agree bit for bit; the
-- first difference is reported (tensor, element, both values).
local ffi = require 'ffi'

local M = {summary = 'Check that a stopped and resumed run ends bit-identical to a straight one.'}

function M.describe(cmd)
   cmd:argument('config', 'Config files or names (as for `kbl run`).'):args('+')
   cmd:option('--steps', 'Training steps in all (the stop is at half).', '20'):convert(tonumber)
   cmd:option('--set', 'Override a config value (key=value).'):count('*')
   cmd:option('--dir', 'Where to write the halfway checkpoint (default: a temporary directory).')
end

local STOP = {}

-- A callback that ends fit at a step by raising STOP (after `fn`, if given).
local function stop_at(step, fn)
   return {name = 'VerifyStop', on_batch_end = function(_, ctx, s)
      if s >= step then
         if fn then fn(ctx) end
         error(STOP, 0)
      end
   end}
end

local function fit_until(trainer, cb)
   trainer:add_callback(cb)
   local ok, err = pcall(trainer.fit, trainer)
   if trainer.restore_defaults then trainer.restore_defaults() end
   if not ok and err ~= STOP then error(err, 0) end
   if ok then
      error(string.format('verify-resume: the run ended at step %d, before the step asked for; '
         .. 'lower --steps', trainer.step), 0)
   end
end

-- Every tensor of a trainer: model/<name> and the optimizer's (optimizer/...).
function M.tensors(trainer)
   local records = require 'kbl.records.run'
   local out = {}
   for name, t in pairs(trainer.model:state_dict()) do out['model/' .. name] = t end
   if trainer.optimizer and trainer.optimizer.state_dict then
      records.pack(trainer.optimizer:state_dict(), 'optimizer', out)
   end
   return out
end

local ptr_types = {float32 = 'float *', float64 = 'double *', int32 = 'int32_t *', int64 = 'int64_t *',
   uint8 = 'uint8_t *'}

-- The first difference between two {name = tensor} tables, or nil when every
-- tensor has the same dtype, shape and bytes: {name, what, index, a, b}.
function M.compare(a, b)
   local names, seen = {}, {}
   for k in pairs(a) do names[#names + 1] = k; seen[k] = true end
   for k in pairs(b) do if not seen[k] then names[#names + 1] = k end end
   table.sort(names)
   for _, name in ipairs(names) do
      local x, y = a[name], b[name]
      if not x or not y then
         return {name = name, what = x and 'missing after resume' or 'missing in the straight run'}
      end
      if x.dtype ~= y.dtype then return {name = name, what = 'dtype ' .. x.dtype .. ' vs ' .. y.dtype} end
      local sx, sy = table.concat(x:size(), 'x'), table.concat(y:size(), 'x')
      if sx ~= sy then return {name = name, what = 'shape ' .. sx .. ' vs ' .. sy} end
      local cx, cy = x:contiguous(), y:contiguous()
      local px, py = ffi.cast(ptr_types[x.dtype], cx:data_ptr()), ffi.cast(ptr_types[y.dtype], cy:data_ptr())
      local size = ffi.sizeof(ffi.typeof(ptr_types[x.dtype]:sub(1, -3)))
      if ffi.C.memcmp(px, py, cx:numel() * size) ~= 0 then
         local bx, by = ffi.cast('uint8_t *', px), ffi.cast('uint8_t *', py)
         for i = 0, cx:numel() - 1 do
            local differs = false
            for j = i * size, i * size + size - 1 do
               if bx[j] ~= by[j] then differs = true break end
            end
            if differs then
               local vx, vy = px[i], py[i]
               return {name = name, what = 'values differ', index = i + 1, a = tonumber(vx), b = tonumber(vy)}
            end
         end
      end
   end
   return nil
end

pcall(ffi.cdef, 'int memcmp(const void *a, const void *b, size_t n);')

-- make_trainer() -> a fresh kbl.fit Trainer for the config, each call alike.
-- Returns {identical = bool, tensors = count, difference = compare() result}.
function M.verify(make_trainer, steps, dir)
   local records = require 'kbl.records.run'
   if type(steps) ~= 'number' or steps < 2 then error('verify-resume: --steps must be at least 2', 0) end
   local half = math.floor(steps / 2)
   local straight = make_trainer()
   fit_until(straight, stop_at(steps))
   local path = dir .. '/verify-resume-step-' .. half .. '.ckpt'
   local now = require('kbl.clock').now
   local first = make_trainer()
   local t_save, t_load
   fit_until(first, stop_at(half, function(ctx)
      local t0 = now()
      records.save_trainer(path, ctx)
      t_save = now() - t0
   end))
   local resumed = make_trainer()
   local t0 = now()
   local r = records.load_trainer(path)
   t_load = now() - t0
   local f = io.open(path, 'rb')
   local bytes = f:seek('end')
   f:close()
   resumed:build()
   resumed.model:load_state_dict(r.model)
   resumed:set_state(r.state)
   fit_until(resumed, stop_at(steps))
   local a, b = M.tensors(straight), M.tensors(resumed)
   local n = 0
   for _ in pairs(a) do n = n + 1 end
   local diff = M.compare(a, b)
   os.remove(path)
   return {identical = diff == nil, tensors = n, difference = diff, half = half, steps = steps,
      checkpoint = {bytes = bytes, save_s = t_save, load_s = t_load}}
end

function M.run(args)
   local ok, run = pcall(require, 'kbl.commands.run')
   if not ok or type(run) ~= 'table' or not run.build_trainer then
      error('verify-resume needs `kbl run` to build a trainer from a config '
         .. '(kbl.commands.run.build_trainer(files, {set = ...})), which this build lacks', 0)
   end
   local dir = args.dir
   if not dir then
      dir = os.tmpname()
      os.remove(dir)
   end
   require('kbl.io.fs').mkdir_p(dir)
   local res = M.verify(function()
      return run.build_trainer(args.config, {set = args.set, quiet = true})
   end, args.steps, dir)
   if res.identical then
      print(string.format('verify-resume: identical: %d tensors agree bit for bit after %d steps '
         .. '(stopped and resumed at step %d)', res.tensors, res.steps, res.half))
      local c = res.checkpoint
      print(string.format('verify-resume: the halfway checkpoint: %.2f MB, written in %.1f ms, read in %.1f ms',
         c.bytes / 1e6, c.save_s * 1e3, c.load_s * 1e3))
      return
   end
   local d = res.difference
   local where = d.index and string.format(' at element %d: straight %.17g, resumed %.17g', d.index, d.a, d.b) or ''
   error(string.format('verify-resume: DIFFERENT after %d steps (resumed at %d): first difference in %s: %s%s',
      res.steps, res.half, d.name, d.what, where), 0)
end

return M
