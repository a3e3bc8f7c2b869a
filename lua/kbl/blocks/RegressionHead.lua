--- blocks.RegressionHead{outputs = 1}: features to [N, outputs] real values, as
-- ClassificationHead (pooling, hidden layers, dropout) with a linear output `fc`.

--- Features to [N, outputs] real values.
-- @table RegressionHead
-- @option activation the hidden layers' activation
-- @option dropout the rate of a Dropout before the output (0: none)
-- @option hidden a list of widths of hidden Dense layers before the output, or none
-- @option outputs the number of values per example
-- @usage local b = blocks.RegressionHead{outputs = 1}
return require('kbl.blocks.ClassificationHead').make_head('RegressionHead', 'outputs')
