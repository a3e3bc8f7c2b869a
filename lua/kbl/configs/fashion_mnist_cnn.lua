-- fashion_mnist_cnn: two conv-batchnorm-relu stages (two convolutions each)
-- with max pooling, the feature maps flattened, and a classification head
-- with a hidden layer and dropout, on Fashion-MNIST. `kbl run fit
-- fashion_mnist_cnn`; examples/fashion_mnist_cnn.lua runs it on its own.
-- (Pooling the maps globally instead of flattening them tops out near 0.90.)
return {
   extends = 'fit',
   name = 'fashion_mnist_cnn',
   data = data.fashion_mnist{validation = 5000, raw = true},           -- uint8 images, as the files store them
   model = blocks.Model{
      preprocess = blocks.Normalize{mean = 0.2860, std = 0.3530, scale = 1 / 255},   -- to float32, normalized
      backbone = blocks.ConvNet{filters = {32, 64}, convs = 2, batch_norm = true},   -- [N, 64, 7, 7]
      neck = blocks.Flatten{},
      head = blocks.ClassificationHead{num_classes = 10, hidden = {128}, dropout = 0.3},
      postprocess = blocks.Activation{'softmax'},   -- class probabilities, in predict and exported models
   },
   optimizer = optim.Adam{lr = 1e-3},
   epochs = 10,
   batch_size = 128,
}
