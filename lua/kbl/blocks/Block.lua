--- blocks.Block: what every block shares. A block type is made with
-- Block.extend(name, {options =, positional =}); an instance is callable
-- (`y = m(x)`) and builds itself on its first input, whose shape fixes its
-- parameters. Parameters are leaf tensors kept from kbl.scope; parameters,
-- buffers and child blocks are named, so every tensor has a path
-- (`backbone.stage1.conv.weight`). Options resolve as: the argument given, else
-- blocks.defaults.TYPE (a program's or config's choice), else the type's own default.
local kbl = require 'kbl'
local defaults = require 'kbl.blocks.defaults'
local initializers = require 'kbl.blocks.initializers'

local Block = {}
Block.__index = Block
Block.type_name = 'Block'

-- An option whose default is "none" (a Lua table cannot hold nil).
Block.NONE = setmetatable({}, {__tostring = function() return 'none' end})
-- An option the caller must give.
Block.REQUIRED = setmetatable({}, {__tostring = function() return 'required' end})

local registry = {}
Block.registry = registry

local util = require 'kbl.util'
local STRINGS = {strings = true}   -- sorted_keys: string keys only
local distance = util.distance   -- for "did you mean" in messages

--- The nearest candidate to a mistyped word, for "did you mean" messages.
-- @local
function Block.closest(word, candidates)
   local best, bd = nil, math.huge
   for _, c in ipairs(candidates) do
      local d = distance(word, c)
      if d < bd then best, bd = c, d end
   end
   if best and bd <= math.max(2, #word / 3) then return best end
   return nil
end

local function unknown_option(type_name, key, valid)
   local near = Block.closest(key, valid)
   return string.format("blocks.%s: unknown option '%s'%s (options: %s)", type_name, tostring(key),
      near and (" (did you mean '" .. near .. "'?)") or '', table.concat(valid, ', '))
end
--- The message for an unknown option of a block type.
-- @local
Block.unknown_option = unknown_option

-- Every block takes these besides its own options.
local COMMON = {name = Block.NONE}

--- Makes a block type: a table with init(self, opts), build(self, x) (make the parameters
-- from the first input) and forward(self, x, ...) to fill in. Options resolve as: the
-- argument given, else blocks.defaults[TYPE], else the type's own default.
-- @tparam string name the type's name (blocks.NAME in messages and specs)
-- @tparam table spec {options = {key = default or Block.REQUIRED or Block.NONE}, positional = {'key', ...},
-- children = true (positional arguments are child blocks), parent = Block}
-- @treturn table the type; TYPE{args} makes a block
-- @usage local Scale = blocks.Block.extend('Scale', {options = {by = 2}})
-- function Scale:forward(x) return x * self.opts.by end
function Block.extend(name, spec)
   spec = spec or {}
   local parent = spec.parent or Block
   local cls = {}
   for k, v in pairs(parent) do
      if type(k) == 'string' and k:sub(1, 2) == '__' then cls[k] = v end
   end
   cls.__index = cls
   cls.type_name = name
   cls.options = spec.options or {}
   for k, v in pairs(COMMON) do cls.options[k] = v end
   cls.positional = spec.positional or {}
   cls.takes_children = spec.children or false
   cls.option_names = util.sorted_keys(cls.options, STRINGS)
   setmetatable(cls, {
      __index = parent,
      __call = function(c, args) return Block.new(c, args) end,
      __tostring = function() return 'blocks.' .. name end,
   })
   registry[name] = cls
   defaults.register(name, cls.option_names)
   return cls
end

-- Resolves the arguments of one construction into self.opts (and self.items,
-- the positional child blocks of a container).
local function resolve(cls, args, self)
   local opts, items = {}, {}
   local given = {}
   local npos = #args
   for i = 1, npos do
      local key = cls.positional[i]
      if key then
         given[key] = args[i]
      elseif cls.takes_children then
         items[#items + 1] = args[i]
      else
         error(string.format('blocks.%s takes %d positional argument%s (%s), got %d', cls.type_name,
            #cls.positional, #cls.positional == 1 and '' or 's', table.concat(cls.positional, ', '), npos), 4)
      end
   end
   for k, v in pairs(args) do
      if type(k) ~= 'number' or k < 1 or k > npos or k % 1 ~= 0 then
         if type(k) ~= 'string' or cls.options[k] == nil then
            error(unknown_option(cls.type_name, tostring(k), cls.option_names), 4)
         end
         if given[k] ~= nil then
            error(string.format("blocks.%s: option '%s' given twice (by position and by name)", cls.type_name, k), 4)
         end
         given[k] = v
      end
   end
   local user = defaults.get(cls.type_name)
   for _, k in ipairs(cls.option_names) do
      local v = given[k]
      if v == nil then v = user[k] end
      if v == nil then v = cls.options[k] end
      if v == Block.REQUIRED then
         error(string.format("blocks.%s needs the option '%s'%s", cls.type_name, k,
            cls.positional[1] == k and string.format(' (blocks.%s{%s, ...})', cls.type_name, k) or ''), 4)
      end
      if v == Block.NONE then v = nil end
      opts[k] = v
   end
   self.opts, self.items = opts, items
end

--- An error message without the library's "file:line: " positions.
-- @local
function Block.strip(err)
   err = tostring(err)
   while true do
      local rest = err:match('^[^:\n]+%.lua:%d+: (.*)$')
      if not rest then return err end
      err = rest
   end
end

--- A new block of a type from its arguments (what TYPE{args} calls); a mistake is reported at the caller's line.
-- @tparam table cls the type
-- @tparam table args positional and named options
-- @treturn table the block
-- @usage local d = blocks.Block.new(blocks.Dense, {10})
function Block.new(cls, args)
   local ok, res = pcall(Block.construct, cls, args)
   if not ok then error(Block.strip(res), 3) end
   return res
end

--- Resolves the arguments and makes the block (Block.new without the error rewriting).
-- @local
function Block.construct(cls, args)
   args = args or {}
   if type(args) ~= 'table' then
      error(string.format('blocks.%s expects a table of options, got %s', cls.type_name, type(args)), 3)
   end
   local self = setmetatable({}, cls)
   self.type_name = cls.type_name
   self._children = {}      -- {name, block} in order
   self._child = {}         -- name -> block
   self._params = {}        -- entries {name =, tensor =, frozen =} in order
   self._buffers = {}       -- entries {name =, tensor =} in order
   self._p = {}             -- name -> parameter or buffer tensor, for forward
   self._regularizers = {}  -- {param name, function}
   self._rules = {}         -- freeze/unfreeze rules, applied to parameters made later too
   self._built = false
   self._scopes = defaults.scopes()   -- the defaults' scopes it is made in, for its build
   self.training = true
   resolve(cls, args, self)
   self.name = self.opts.name
   if self.init then self:init(self.opts) end
   return self
end

--- A child given as a block, a spec table {type = ...} or a function (wrapped in a Lambda), as a block.
-- @local
function Block.as_block(v, what)
   if Block.is_block(v) then return v end
   if type(v) == 'function' then return registry.Lambda{v} end
   if type(v) == 'table' and type(v.type) == 'string' then return Block.from_spec(v) end
   error(string.format('blocks: %s must be a block, a spec {type = ...} or a function, got %s',
      what or 'a child', type(v)), 3)
end

--- Whether v is a block. Also blocks.is_block.
-- @param v any value
-- @treturn boolean
-- @usage print(blocks.is_block(blocks.Dense{3}))  --> true
function Block.is_block(v)
   return type(v) == 'table' and getmetatable(v) ~= nil and rawget(getmetatable(v), 'type_name') ~= nil
      and rawget(getmetatable(v), '__index') == getmetatable(v)
end

--- A block from a spec table; nested specs (children, Model parts) build with it. Also blocks.build.
-- @tparam table spec {type = 'Dense', units = 10, ...}
-- @treturn table the block
-- @usage local d = blocks.build{type = 'Dense', units = 10}
function Block.from_spec(spec)
   if Block.is_block(spec) then return spec end
   if type(spec) ~= 'table' or type(spec.type) ~= 'string' then
      error("blocks.build expects a table with a 'type' (a block type name)", 2)
   end
   local cls = registry[spec.type:gsub('^blocks%.', '')]
   if not cls then
      local near = Block.closest(spec.type, util.sorted_keys(registry, STRINGS))
      error(string.format("blocks.build: unknown block type '%s'%s", spec.type,
         near and (" (did you mean '" .. near .. "'?)") or ''), 2)
   end
   local args = {}
   for k, v in pairs(spec) do
      if k ~= 'type' then
         if type(k) == 'number' and type(v) == 'table' and type(v.type) == 'string' then v = Block.from_spec(v) end
         args[k] = v
      end
   end
   local ok, res = pcall(Block.construct, cls, args)
   if not ok then error(Block.strip(res), 2) end
   return res
end

-- ---- structure ---------------------------------------------------------------

--- Adds a child block under a name (its `name` option, when given, wins unless fixed_name is true).
-- @tparam string name
-- @param child a block, a spec table or a function
-- @tparam[opt=false] boolean fixed_name
-- @treturn table the child
-- @usage self:add('fc', blocks.Dense{10})
function Block:add(name, child, fixed_name)
   child = Block.as_block(child)
   if not fixed_name then name = child.name or name end
   name = tostring(name)
   if name:find('.', 1, true) or name == '' then
      error(string.format("blocks.%s: child name '%s' may not be empty or contain '.'", self.type_name, name), 2)
   end
   if self._child[name] or self._p[name] then
      error(string.format("blocks.%s: two children named '%s'", self.type_name, name), 2)
   end
   self._children[#self._children + 1] = {name, child}
   self._child[name] = child
   child._key = name
   child.training = self.training
   if self._device and not child._device then child:to(self._device) end
   return child
end

--- The child blocks, as a list of {name, block}.
-- @treturn table
-- @usage for _, c in ipairs(m:children()) do print(c[1]) end
function Block:children()
   local out = {}
   for i, c in ipairs(self._children) do out[i] = c[2] end
   return out
end

--- The descendant block at a dotted path, or nil.
-- @tparam string path 'backbone.stage1'
-- @treturn table a block or nil
-- @usage local stem = model:get('backbone.stage1')
function Block:get(path)
   local b = self
   for part in tostring(path):gmatch('[^.]+') do
      b = b._child[part]
      if not b then return nil end
   end
   return b
end

--- Registers a parameter (in build): a kept, contiguous leaf that requires grad.
-- @tparam string name
-- @tparam tensor t its initial value
-- @treturn tensor the parameter
-- @usage self:add_parameter('weight', kbl.randn(out, inp) * 0.01)
function Block:add_parameter(name, t)
   if self._device then t = t:to(self._device) end
   t = kbl.keep(t:detach():contiguous())
   if t.grad_fn then t = kbl.keep(t:clone():detach()) end
   t.requires_grad = true
   self._params[#self._params + 1] = {name = name, tensor = t, frozen = false}
   self._p[name] = t
   Block.generation = (Block.generation or 0) + 1
   return t
end

--- Registers a buffer: state that is saved but not trained (running statistics).
-- @tparam string name
-- @tparam tensor t
-- @treturn tensor
-- @usage self:add_buffer('running_mean', kbl.zeros(c))
function Block:add_buffer(name, t)
   if self._device then t = t:to(self._device) end
   t = kbl.keep(t:detach():contiguous())
   self._buffers[#self._buffers + 1] = {name = name, tensor = t}
   self._p[name] = t
   return t
end

--- Puts a regularizer (a function of the parameter giving a 0-dim tensor) on a parameter.
-- @tparam string name the parameter
-- @tparam function fn
-- @usage self:add_regularizer('weight', blocks.regularizers.get('l2'))
function Block:add_regularizer(name, fn)
   if fn then self._regularizers[#self._regularizers + 1] = {name, fn} end
end

--- The dtype a block's parameters take from its first input.
-- @local
function Block.param_dtype(x)
   local dt = x.dtype
   if dt == 'float32' or dt == 'float64' then return dt end
   return 'float32'
end

--- Makes weight (shape) and, with opts.use_bias, bias [n_bias] from opts.kernel_init and opts.bias_init,
-- then their regularizers (self.kernel_reg, self.bias_reg): Dense and the convolution blocks.
-- @local
function Block:make_weight_bias(x, shape, fans, n_bias)
   local o = self.opts
   local dt = Block.param_dtype(x)
   self:add_parameter('weight', initializers.make(o.kernel_init, shape, dt, fans))
   if o.use_bias then self:add_parameter('bias', initializers.make(o.bias_init, {n_bias}, dt, fans)) end
   self:add_regularizer('weight', self.kernel_reg)
   if o.use_bias then self:add_regularizer('bias', self.bias_reg) end
end

--- Calls fn(block, path) for this block and every descendant, parents first.
-- @tparam function fn
-- @tparam[opt] string prefix
-- @usage m:walk(function(b, path) print(path, b.type_name) end)
function Block:walk(fn, prefix)
   fn(self, prefix or '')
   for _, c in ipairs(self._children) do
      c[2]:walk(fn, (prefix and prefix ~= '' and (prefix .. '.') or '') .. c[1])
   end
end

local function join(prefix, name) return prefix == '' and name or (prefix .. '.' .. name) end

-- Every parameter entry with its path, in a stable order (a block's own, then its children's).
function Block:_entries(kind)
   local out = {}
   self:walk(function(b, prefix)
      for _, e in ipairs(b[kind]) do out[#out + 1] = {join(prefix, e.name), e, b} end
   end)
   return out
end

-- ---- calling ----------------------------------------------------------------

local function shape_of(y)
   if kbl.is_tensor(y) then return y:size() end
   return nil
end

-- Prefixes an error with this block's place: "blocks: in Dense 'backbone.fc': ...".
local function locate(self, err)
   err = tostring(err)
   local tname, path, msg = err:match("^blocks: in (%w+) '([^']*)': (.*)$")
   if tname then
      if self._key then path = self._key .. '.' .. path end
      return string.format("blocks: in %s '%s': %s", tname, path, msg)
   end
   return string.format("blocks: in %s '%s': %s", self.type_name, self._key or self.name or self.type_name,
      (err:gsub('^blocks: ', '')))
end

local function finish(self, ok, y, ...)
   if not ok then error(locate(self, y), 0) end
   self._out_shape = shape_of(y)
   if #self._rules > 0 and self._rules_generation ~= Block.generation then self:_apply_rules() end
   return y, ...
end

-- y = m(x, ...): builds the block on its first input, then runs forward.
function Block.__call(self, x, ...)
   if not self._built then
      local ok, err
      if #self._scopes > 0 then
         ok, err = pcall(defaults.in_scope, self._scopes, self.build, self, x, ...)
      else
         ok, err = pcall(self.build, self, x, ...)
      end
      if not ok then error(locate(self, err), 0) end
      self._built = true
   end
   return finish(self, pcall(self.forward, self, x, ...))
end

--- Makes the parameters from the first input (a type overrides it; the default makes none).
-- @param self the block
-- @tparam tensor x the first input
-- @usage function MyBlock:build(x) self:add_parameter('w', kbl.zeros(x:size(-1))) end
function Block.build() end
--- The block's computation (a type overrides it; the default passes x through).
-- @param _ the block
-- @tparam tensor x
-- @treturn tensor
-- @usage function MyBlock:forward(x) return x * self._p.w end
function Block.forward(_, x) return x end

--- A forward that runs the children in order, each on the last one's output (extra arguments are not passed on).
-- @local
function Block:forward_children(x)
   for _, c in ipairs(self._children) do x = c[2](x) end
   return x
end

--- Whether the block has seen its first input and made its parameters.
-- @treturn boolean
-- @usage print(m:is_built())
function Block:is_built() return self._built end

-- ---- parameters, buffers, state -------------------------------------------------

--- Every trainable parameter (frozen ones left out), in named_parameters order.
-- @treturn table a list of tensors
-- @usage opt:step(m:parameters())
function Block:parameters()
   local out = {}
   for _, r in ipairs(self:_entries('_params')) do
      if not r[2].frozen then out[#out + 1] = r[2].tensor end
   end
   return out
end

--- Every parameter with its path: {{name, tensor}, ...}, frozen ones too unless opts.trainable.
-- @tparam[opt] table opts {trainable = false}
-- @treturn table
-- @usage for _, p in ipairs(m:named_parameters()) do print(p[1], p[2]:size()) end
function Block:named_parameters(opts)
   local trainable = opts and opts.trainable
   local out = {}
   for _, r in ipairs(self:_entries('_params')) do
      if not (trainable and r[2].frozen) then out[#out + 1] = {r[1], r[2].tensor} end
   end
   return out
end

--- Every buffer with its path: {{name, tensor}, ...}.
-- @treturn table
-- @usage for _, b in ipairs(m:named_buffers()) do print(b[1]) end
function Block:named_buffers()
   local out = {}
   for _, r in ipairs(self:_entries('_buffers')) do out[#out + 1] = {r[1], r[2].tensor} end
   return out
end

--- Every buffer (running statistics and the like), a list.
-- @treturn table
-- @usage local n = #m:buffers()
function Block:buffers()
   local out = {}
   for _, r in ipairs(self:_entries('_buffers')) do out[#out + 1] = r[2].tensor end
   return out
end

--- name -> tensor for every parameter and buffer. The tensors share memory with
-- the block (as PyTorch's state_dict): clone them to keep a snapshot.
-- @treturn table
-- @usage local sd = m:state_dict()
function Block:state_dict()
   local sd = {}
   for _, kind in ipairs{'_params', '_buffers'} do
      for _, r in ipairs(self:_entries(kind)) do sd[r[1]] = r[2].tensor:detach() end
   end
   return sd
end

local function shape_str(s) return '[' .. table.concat(s, ', ') .. ']' end

--- Copies the tensors of sd into the block's parameters and buffers. Strict (the
-- default): any missing or unexpected key, or a shape mismatch, is an error naming
-- them all, and nothing is loaded.
-- @tparam table sd name -> tensor
-- @tparam[opt] table opts {strict = true}
-- @treturn table {missing =, unexpected =, mismatched =}
-- @usage m:load_state_dict(other:state_dict())
function Block:load_state_dict(sd, opts)
   if type(sd) ~= 'table' then error('blocks: load_state_dict expects a table of name = tensor', 2) end
   local strict = not (opts and opts.strict == false)
   local targets, missing, mismatched, unexpected = {}, {}, {}, {}
   for _, kind in ipairs{'_params', '_buffers'} do
      for _, r in ipairs(self:_entries(kind)) do targets[r[1]] = r[2].tensor end
   end
   for _, name in ipairs(util.sorted_keys(targets, STRINGS)) do
      local src, dst = sd[name], targets[name]
      if src == nil then
         missing[#missing + 1] = name
      elseif not kbl.is_tensor(src) then
         mismatched[#mismatched + 1] = string.format('%s (not a tensor: %s)', name, type(src))
      else
         local a, b = dst:size(), src:size()
         local same = #a == #b
         for i = 1, #a do same = same and a[i] == b[i] end
         if not same then
            mismatched[#mismatched + 1] = string.format('%s (%s in the model, %s given)', name, shape_str(a),
               shape_str(b))
         end
      end
   end
   for _, name in ipairs(util.sorted_keys(sd, STRINGS)) do
      if targets[name] == nil then unexpected[#unexpected + 1] = name end
   end
   local unbuilt = {}
   self:walk(function(b, prefix)
      if not b._built and (b.build ~= Block.build) then unbuilt[#unbuilt + 1] = prefix == '' and '(root)' or prefix end
   end)
   if strict and (#missing + #unexpected + #mismatched) > 0 then
      local parts = {}
      if #missing > 0 then parts[#parts + 1] = 'missing keys: ' .. table.concat(missing, ', ') end
      if #unexpected > 0 then parts[#parts + 1] = 'unexpected keys: ' .. table.concat(unexpected, ', ') end
      if #mismatched > 0 then parts[#parts + 1] = 'shape mismatches: ' .. table.concat(mismatched, ', ') end
      local note = #unbuilt > 0 and ('; not built yet (call the model on an input first): '
         .. table.concat(unbuilt, ', ')) or ''
      error('blocks: load_state_dict: ' .. table.concat(parts, '; ') .. note, 2)
   end
   kbl.no_grad(function()
      local bad = {}
      for _, m in ipairs(mismatched) do bad[m:match('^(%S+)')] = true end
      for name, dst in pairs(targets) do
         if sd[name] ~= nil and not bad[name] then dst:copy_(sd[name]) end
      end
   end)
   return {missing = missing, unexpected = unexpected, mismatched = mismatched}
end

--- Saves the state dict as a safetensors file (PyTorch's layouts).
-- @tparam string path
-- @tparam[opt] table metadata strings
-- @usage m:save('w.safetensors')
function Block:save(path, metadata)
   require('kbl.io.safetensors').save(path, self:state_dict(), metadata)
end
--- Loads a safetensors file into the block (strict unless opts.strict == false).
-- @tparam string path
-- @tparam[opt] table opts {strict = true}
-- @treturn table {missing =, unexpected =, mismatched =}
-- @usage m:load('w.safetensors')
function Block:load(path, opts)
   local tensors = require('kbl.io.safetensors').load(path)
   return self:load_state_dict(tensors, opts)
end

--- Clears the gradients of every parameter.
-- @usage m:zero_grad(); loss:backward()
function Block:zero_grad()
   for _, r in ipairs(self:_entries('_params')) do r[2].tensor.grad = nil end
end

--- Sets training mode (dropout on, batch statistics) on the block and its descendants.
-- @tparam[opt=true] boolean mode false is eval()
-- @treturn table the block
-- @usage m:train()
function Block:train(mode)
   if mode == nil then mode = true end
   self:walk(function(b) b.training = mode and true or false end)
   return self
end
--- Sets evaluation mode on the block and its descendants (train(false)).
-- @treturn table the block
-- @usage m:eval()
function Block:eval() return self:train(false) end

--- Converts parameters and buffers to a device ('cpu', 'cuda') or a float dtype
-- ('float64', ...; integer buffers keep theirs). A device is remembered: parameters a
-- lazy block makes later go there too.
-- @tparam string what a device or a dtype
-- @treturn table the block
-- @usage m:to('cuda')
function Block:to(what)
   if what == 'cuda:0' then what = 'cuda' end
   local device = what == 'cpu' or what == 'cuda'
   if device then self:walk(function(b) b._device = what ~= 'cpu' and what or nil end) end
   for _, kind in ipairs{'_params', '_buffers'} do
      for _, r in ipairs(self:_entries(kind)) do
         local e, owner = r[2], r[3]
         local dt = e.tensor.dtype
         local t = (device or dt == 'float32' or dt == 'float64') and e.tensor:to(what) or e.tensor
         if t ~= e.tensor then
            local is_param = kind == '_params'
            t = kbl.keep(t:detach():contiguous())
            if is_param and not e.frozen then t.requires_grad = true end
            e.tensor = t
            owner._p[e.name] = t
         end
      end
   end
   return self
end

-- ---- freezing --------------------------------------------------------------------

-- A path pattern: '*' any run of characters, '?' one; a pattern also matches
-- everything below the path it names ('backbone' freezes backbone.*).
local function glob(pattern)
   local p = pattern:gsub('[%^%$%(%)%%%.%[%]%+%-]', '%%%0'):gsub('%*', '.*'):gsub('%?', '.')
   return '^' .. p .. '$', '^' .. p .. '%.'
end

function Block:_apply_rules()
   for _, r in ipairs(self:_entries('_params')) do
      local name, e = r[1], r[2]
      for _, rule in ipairs(self._rules) do
         if name:match(rule[1]) or name:match(rule[2]) then e.frozen = rule[3] end
      end
      e.tensor.requires_grad = not e.frozen
      if e.frozen then e.tensor.grad = nil end
   end
   self._rules_generation = Block.generation
end

local function add_rule(self, pattern, frozen)
   pattern = pattern or '*'
   if type(pattern) ~= 'string' then error('blocks: freeze/unfreeze take a path pattern string', 3) end
   local full, below = glob(pattern)
   self._rules[#self._rules + 1] = {full, below, frozen, pattern}
   self:_apply_rules()
   return self
end

--- Freezes the parameters whose paths match: they leave parameters() and get no gradient.
-- Parameters made later (lazy building) follow too.
-- @tparam[opt] string pattern a path or a * pattern ('backbone', 'backbone.*'); everything when nil
-- @treturn table the block
-- @usage m:freeze('backbone.*')
function Block:freeze(pattern) return add_rule(self, pattern, true) end
--- Trains the parameters whose paths match again.
-- @tparam[opt] string pattern a path or a * pattern; everything when nil
-- @treturn table the block
-- @usage m:unfreeze('backbone.stage2.*')
function Block:unfreeze(pattern) return add_rule(self, pattern, false) end

-- ---- regularization -----------------------------------------------------------

--- The sum of every block's regularizers over its parameters (a 0-dim tensor), or nil when none.
-- @treturn tensor or nil
-- @usage local r = m:regularization_loss(); if r then loss = loss + r end
function Block:regularization_loss()
   local total
   self:walk(function(b)
      for _, r in ipairs(b._regularizers) do
         local t = b._p[r[1]]
         if t then
            local v = r[2](t)
            total = total and total + v or v
         end
      end
   end)
   return total
end

-- ---- description ----------------------------------------------------------------

-- describe, __tostring (the tree) and summary (the table of shapes and counts)
require('kbl.blocks.summary').install(Block)

return Block
