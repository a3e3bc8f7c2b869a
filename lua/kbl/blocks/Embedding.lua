--- blocks.Embedding{num_embeddings, embedding_dim, padding_idx = nil}: rows of a
-- table looked up by int64 indices counting from 1: [...] -> [..., dim]. The
-- padding row (from 1) starts at zero and gets no gradient. Parameter as
-- torch.nn.Embedding: weight [num_embeddings, embedding_dim], N(0, 1) at first.
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'
local initializers = require 'kbl.blocks.initializers'

--- Rows of a table looked up by int64 indices counting from 1.
-- @table Embedding
-- @option dtype the table's dtype
-- @option embedding_dim the width of a row
-- @option embeddings_init the table's initializer (blocks.initializers)
-- @option num_embeddings the number of rows
-- @option padding_idx a row (from 1) that starts at zero and gets no gradient, or none
-- @usage local b = blocks.Embedding{1000, 64}
local Embedding = Block.extend('Embedding', {
   options = {num_embeddings = Block.REQUIRED, embedding_dim = Block.REQUIRED, padding_idx = Block.NONE,
      embeddings_init = 'normal', dtype = 'float32'},
   positional = {'num_embeddings', 'embedding_dim'},
})

function Embedding.init(_, o)
   for _, k in ipairs{'num_embeddings', 'embedding_dim'} do
      if type(o[k]) ~= 'number' or o[k] < 1 or o[k] % 1 ~= 0 then
         error(string.format('blocks.Embedding: %s must be a positive whole number, got %s', k, tostring(o[k])), 4)
      end
   end
end

function Embedding:build()
   local o = self.opts
   local w = initializers.make(o.embeddings_init, {o.num_embeddings, o.embedding_dim}, o.dtype,
      {fan_in = o.num_embeddings, fan_out = o.embedding_dim})
   if o.padding_idx then w[o.padding_idx]:fill_(0) end
   self:add_parameter('weight', w)
end

function Embedding:forward(idx)
   return kbl.embedding(idx, self._p.weight, {padding_idx = self.opts.padding_idx})
end

return Embedding
