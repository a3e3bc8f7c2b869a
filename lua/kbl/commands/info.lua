-- kbl info: version, devices (and why there is no CUDA device), the CPU kernel
-- library (oneDNN: its version, the instruction set its JIT uses here, its math
-- mode) and thread count.
local M = {summary = 'Print version, devices, CPU kernels and threads.'}

function M.describe(cmd)
   cmd:flag('--json', 'Print one JSON object.')
end

function M.run(args)
   local kbl = require 'kbl'
   local cuda = kbl.cuda.is_available()
   local info = {
      version = kbl.version(),
      cpu_kernels = kbl.blas_info(),
      threads = kbl.get_num_threads(),
      cuda = cuda,
      cuda_devices = kbl.cuda.device_count(),
      cuda_device = cuda and kbl.cuda.device_name() or nil,
      cuda_unavailable = not cuda and kbl.cuda.unavailable_reason() or nil,
      luajit = jit.version,
   }
   if args.json then
      local keyorder = {'version', 'cpu_kernels', 'threads', 'cuda', 'cuda_devices', 'cuda_device', 'cuda_unavailable',
         'luajit'}
      print(require('dkjson').encode(info, {keyorder = keyorder}))
      return
   end
   print('kbl ' .. info.version)
   print('LuaJIT: ' .. info.luajit)
   print('CPU kernels: ' .. info.cpu_kernels)
   print('threads: ' .. info.threads)
   if cuda then
      print('devices: cpu, cuda x' .. info.cuda_devices .. ' (cuda:0 is ' .. info.cuda_device .. ')')
   else
      print('devices: cpu (no CUDA device: ' .. info.cuda_unavailable .. ')')
   end
end

return M
