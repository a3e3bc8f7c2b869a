-- fashion_mnist_mlp: a two-layer MLP on Fashion-MNIST (Debian's
-- dataset-fashion-mnist). `kbl run fit fashion_mnist_mlp`; examples/
-- fashion_mnist_mlp.lua runs it on its own. Reaches about 0.89 test accuracy
-- in 10 epochs.
return {
   extends = 'fit',
   name = 'fashion_mnist_mlp',
   data = data.fashion_mnist{validation = 5000},
   transforms = {{'normalize', {mean = 0.2860, std = 0.3530}}},
   model = blocks.Model{
      backbone = blocks.MLP{units = {512, 256}, activation = 'relu', dropout = 0.2},
      head = blocks.ClassificationHead{num_classes = 10},
   },
   optimizer = optim.Adam{lr = 1e-3},
   epochs = 10,
   batch_size = 128,
}
