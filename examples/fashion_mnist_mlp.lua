-- examples/fashion_mnist_mlp.lua: an MLP on Fashion-MNIST, test accuracy >= 0.885
-- in 10 epochs.   kbl run examples/fashion_mnist_mlp.lua
-- The settings live in lua/kbl/configs/fashion_mnist_mlp.lua (on top of fit.lua);
-- override any of them here or with --set, e.g. --set optimizer.lr=3e-4.
return {
   extends = 'fashion_mnist_mlp',
   name = 'fashion_mnist_mlp',
}
