-- blocks.RegressionHead{outputs = 1}: features to [N, outputs] real values, as
-- ClassificationHead (pooling, hidden layers, dropout) with a linear output `fc`.
return require('blocks.ClassificationHead').make_head('RegressionHead', 'outputs')
