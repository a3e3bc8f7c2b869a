-- kbl info: version, devices, BLAS in use and thread count.
local M = {summary = 'Print version, devices, BLAS and threads.'}

function M.describe(cmd)
   cmd:flag('--json', 'Print one JSON object.')
end

function M.run(args)
   local kbl = require 'kbl'
   local info = {
      version = kbl.version(),
      blas = kbl.blas_info(),
      threads = kbl.get_num_threads(),
      cuda = kbl.cuda.is_available(),
      cuda_devices = kbl.cuda.device_count(),
      luajit = jit.version,
   }
   if args.json then
      local keyorder = {'version', 'blas', 'threads', 'cuda', 'cuda_devices', 'luajit'}
      print(require('dkjson').encode(info, {keyorder = keyorder}))
      return
   end
   print('kbl ' .. info.version)
   print('LuaJIT: ' .. info.luajit)
   print('BLAS: ' .. info.blas)
   print('threads: ' .. info.threads)
   print('devices: cpu' .. (info.cuda and (', cuda x' .. info.cuda_devices) or ' (no CUDA device)'))
end

return M
