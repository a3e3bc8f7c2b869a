-- bench/torch_best.lua — PyTorch at its best on this machine: its default
-- environment and OPENBLAS_CORETYPE set to each OpenBLAS kernel the CPU runs
-- (Haswell for AVX2, SkylakeX for AVX-512, Cooperlake for AVX-512 BF16), so a
-- PyTorch slowed by OpenBLAS's CPU detection is not the bar. Loaded with dofile;
-- returns best(run), where run(env_prefix) returns a table of
-- {name = {seconds = s, threads = n}} (the JSON the *.py sides print); best
-- returns the fastest per name, each with .env naming the environment, and the
-- default environment's whole table as a second value.
local function cpu_flags()
   local f = io.open('/proc/cpuinfo')
   if not f then return {} end
   local text = f:read('*a')
   f:close()
   local flags = {}
   for w in (text:match('\nflags%s*:%s*([^\n]*)') or ''):gmatch('%S+') do flags[w] = true end
   return flags
end

local function envs()
   local flags = cpu_flags()
   local list = {{name = 'default', prefix = ''}}
   if flags.avx2 and flags.fma then list[#list + 1] = {name = 'Haswell', prefix = 'OPENBLAS_CORETYPE=Haswell '} end
   if flags.avx512f and flags.avx512bw and flags.avx512vl then
      list[#list + 1] = {name = 'SkylakeX', prefix = 'OPENBLAS_CORETYPE=SkylakeX '}
   end
   if flags.avx512_bf16 then list[#list + 1] = {name = 'Cooperlake', prefix = 'OPENBLAS_CORETYPE=Cooperlake '} end
   return list
end

return function(run)
   local best, default = {}, nil
   for _, env in ipairs(envs()) do
      local res = run(env.prefix)
      default = default or res
      for name, r in pairs(res) do
         if type(r) == 'table' and r.seconds and (not best[name] or r.seconds < best[name].seconds) then
            best[name] = {seconds = r.seconds, threads = r.threads, env = env.name}
         end
      end
   end
   return best, default
end
