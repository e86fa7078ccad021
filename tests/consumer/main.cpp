// Uses the installed headers: a convolution, a ReLU and a backward pass,
// checked against values worked out by hand.
#include <lgh/lgh.hpp>

#include <cstdio>

int main() {
  using lgh::TensorF;
  // x: 1x1x3x3 of ones; w: 1x1x2x2 of twos; bias 1 -> every output is 4*2 + 1 = 9.
  TensorF x = TensorF::ones({1, 1, 3, 3});
  TensorF w = TensorF::full({1, 1, 2, 2}, 2.f).set_requires_grad();
  TensorF b = TensorF::ones({1}).set_requires_grad();
  TensorF y = lgh::ops::relu(lgh::ops::conv2d(x, w, b));
  if (y.shape() != lgh::Shape{1, 1, 2, 2}) return std::printf("unexpected shape %s\n", y.shape().str().c_str()), 1;
  for (float v : y.to_vector())
    if (v != 9.f) return std::printf("unexpected output %g\n", v), 1;
  y.backward(TensorF::ones({1, 1, 2, 2}));
  // dL/dw[k] = sum over the 4 outputs of x under tap k = 4; dL/db = 4.
  for (float v : w.grad().to_vector())
    if (v != 4.f) return std::printf("unexpected weight gradient %g\n", v), 1;
  if (b.grad().item() != 4.f) return std::printf("unexpected bias gradient\n"), 1;
  std::printf("consumer ok: lgh %s\n", LGH_VERSION_STRING);
  return 0;
}
