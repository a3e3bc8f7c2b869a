-- fit: the base of a training run; experiment configs extend it and name the
-- data and the model (`kbl run fit fashion_mnist_mlp`).
return {
   seed = 1,
   device = 'cpu',
   epochs = 10,
   batch_size = 128,
   shuffle = true,
   prefetch = 2,
   loss = losses.CrossEntropy{},
   optimizer = optim.Adam{lr = 1e-3},
   metrics = {metrics.Accuracy{}},
   callbacks = {},
}
