-- fashion_mnist_mlp: a two-layer MLP on Fashion-MNIST (Debian's
-- dataset-fashion-mnist). `kbl run fit fashion_mnist_mlp`; examples/
-- fashion_mnist_mlp.lua runs it on its own. Reaches about 0.89 test accuracy
-- in 10 epochs.
return {
   extends = 'fit',
   name = 'fashion_mnist_mlp',
   data = data.fashion_mnist{validation = 5000, raw = true},           -- uint8 images, as the files store them
   model = blocks.Model{
      preprocess = blocks.Normalize{mean = 0.2860, std = 0.3530, scale = 1 / 255},   -- to float32, normalized
      backbone = blocks.MLP{units = {512, 256}, activation = 'relu', dropout = 0.2},
      head = blocks.ClassificationHead{num_classes = 10},
      postprocess = blocks.Activation{'softmax'},   -- class probabilities, in predict and exported models
   },
   optimizer = optim.Adam{lr = 1e-3},
   epochs = 10,
   batch_size = 128,
}
