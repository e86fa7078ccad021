// lgh: 3D hand pose estimation with learnable joint groups (Li, Gao, Sang,
// AAAI 2021), header-only. Include this header for the whole CPU library;
// link lgh::cuda as well for CUDA tensors, and lgh::matio for the STB reader's
// .mat files (it then defines LGH_HAVE_MATIO).
#pragma once

// core
#include "lgh/core/backend.hpp"
#include "lgh/core/config.hpp"
#include "lgh/core/dispatch.hpp"
#include "lgh/core/error.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/core/philox.hpp"
#include "lgh/core/stream.hpp"
#include "lgh/core/tensor.hpp"

// autograd
#include "lgh/autograd/engine.hpp"
#include "lgh/autograd/gradcheck.hpp"

// ops
#include "lgh/ops/backproject.hpp"
#include "lgh/ops/batchnorm.hpp"
#include "lgh/ops/conv.hpp"
#include "lgh/ops/elementwise.hpp"
#include "lgh/ops/group_fusion.hpp"
#include "lgh/ops/group_select.hpp"
#include "lgh/ops/gumbel_softmax.hpp"
#include "lgh/ops/inference.hpp"
#include "lgh/ops/linear.hpp"
#include "lgh/ops/loss.hpp"
#include "lgh/ops/pooling.hpp"
#include "lgh/ops/reduce.hpp"
#include "lgh/ops/shape_ops.hpp"
#include "lgh/ops/soft_argmax_depth.hpp"
#include "lgh/ops/softmax.hpp"

// nn
#include "lgh/nn/model.hpp"
#include "lgh/nn/pose3d.hpp"

// optim
#include "lgh/optim/adam.hpp"
#include "lgh/optim/schedule.hpp"

// io
#include "lgh/io/safetensors.hpp"
#include "lgh/io/weights.hpp"

// data
#include "lgh/data/augment.hpp"
#include "lgh/data/crop.hpp"
#include "lgh/data/dexter_object.hpp"
#include "lgh/data/draw.hpp"
#include "lgh/data/freihand.hpp"
#include "lgh/data/loader.hpp"
#include "lgh/data/rhd.hpp"
#include "lgh/data/stb.hpp"
#include "lgh/data/synthetic.hpp"
#if defined(LGH_HAVE_MATIO)
#include "lgh/data/stb_mat.hpp"
#endif

// eval
#include "lgh/eval/estimate.hpp"
#include "lgh/eval/evaluate.hpp"
#include "lgh/eval/metrics.hpp"
#include "lgh/eval/plot.hpp"

// train
#include "lgh/train/checkpoint.hpp"
#include "lgh/train/step.hpp"
#include "lgh/train/trainer.hpp"
