-- examples/fashion_mnist_cnn.lua: a small CNN on Fashion-MNIST, test accuracy
-- >= 0.92 in 10 epochs.   kbl run examples/fashion_mnist_cnn.lua
-- The settings live in lua/kbl/configs/fashion_mnist_cnn.lua (on top of fit.lua).
return {
   extends = 'fashion_mnist_cnn',
   name = 'fashion_mnist_cnn',
}
