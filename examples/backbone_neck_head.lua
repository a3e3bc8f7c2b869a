-- examples/backbone_neck_head.lua: a Model of backbone, neck and head on
-- Fashion-MNIST, trained in two stages: first everything, then the neck and
-- head alone (backbone frozen) at a lower learning rate, with a fresh optimizer.
--   kbl run examples/backbone_neck_head.lua
return {
   extends = 'fit',
   name = 'backbone_neck_head',
   data = data.fashion_mnist{validation = 5000, raw = true},           -- uint8 images, as the files store them
   model = blocks.Model{
      preprocess = blocks.Normalize{mean = 0.2860, std = 0.3530, scale = 1 / 255},   -- to float32, normalized
      backbone = blocks.ConvNet{filters = {16, 32}, batch_norm = true},     -- [N, 32, 7, 7]
      neck = blocks.Sequential{blocks.GlobalAvgPool2D{}, blocks.Dense{64, activation = 'relu'}},
      head = blocks.ClassificationHead{num_classes = 10},
      postprocess = blocks.Activation{'softmax'},   -- class probabilities, in predict and exported models
   },
   optimizer = optim.Adam{lr = 2e-3},
   batch_size = 128,
   stages = {
      {name = 'all parts', epochs = 3},
      {name = 'neck and head', epochs = 2, lr = 2e-4, freeze = 'backbone'},
   },
}
