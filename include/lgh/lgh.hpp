// lgh: 3D hand pose estimation with learnable joint groups (Li, Gao, Sang,
// AAAI 2021), header-only. Include this header for the whole CPU library;
// link lgh::cuda as well for CUDA tensors.
#pragma once

#include "lgh/core/config.hpp"
#include "lgh/core/error.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/core/philox.hpp"
#include "lgh/core/tensor.hpp"

#include "lgh/autograd/engine.hpp"
#include "lgh/autograd/gradcheck.hpp"

#include "lgh/ops/conv.hpp"
#include "lgh/ops/elementwise.hpp"
