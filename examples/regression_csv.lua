-- examples/regression_csv.lua: regression on a CSV file this example writes
-- itself (y = 3 x1 - 2 x2 + 0.5 x3 + 1 + noise, 2000 rows for training and
-- validation, 500 for testing), with an MLP and the mean squared error.
--   kbl run examples/regression_csv.lua
local dir = os.getenv('TMPDIR') or '/tmp'
local train, test = dir .. '/kbl-regression-train.csv', dir .. '/kbl-regression-test.csv'

-- The data: a fixed linear rule plus noise, from Lua's own generator seeded
-- here, so the files are the same on every run.
local function write_csv(path, n, seed)
   math.randomseed(seed)
   local f = assert(io.open(path, 'w'))
   f:write('x1,x2,x3,y\n')
   for _ = 1, n do
      local x1, x2, x3 = math.random() * 2 - 1, math.random() * 2 - 1, math.random() * 2 - 1
      local noise = (math.random() + math.random() + math.random() - 1.5) * 0.1
      f:write(string.format('%.6f,%.6f,%.6f,%.6f\n', x1, x2, x3, 3 * x1 - 2 * x2 + 0.5 * x3 + 1 + noise))
   end
   f:close()
end
write_csv(train, 2000, 1)
write_csv(test, 500, 2)

return {
   extends = 'fit',
   name = 'regression_csv',
   data = data.csv{path = train, test = test, label = 'y', regression = true, validation = 400},
   model = blocks.Model{
      backbone = blocks.MLP{units = {32, 32}, activation = 'relu'},
      head = blocks.RegressionHead{outputs = 1},
   },
   loss = losses.MSE{},
   metrics = {metrics.MAE{}},
   optimizer = optim.Adam{lr = 3e-3},
   epochs = 20,
   batch_size = 32,
}
