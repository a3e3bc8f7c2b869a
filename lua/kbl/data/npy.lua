--- kbl.data.npy: data.npy(path) -> tensor, NumPy's .npy format. The reader is
-- kbl.io.npy (the records area's); this names it where data users look.

--- Reads a NumPy .npy file as a tensor.
-- @tparam string path
-- @treturn tensor
-- @usage local x = data.npy('x.npy')
return function(path)
   if type(path) ~= 'string' then error('data.npy: expects a file path', 2) end
   local npy = require 'kbl.io.npy'
   return (npy.read or npy.load)(path)
end
