// tests/cuda/test_fused_kernels.cu on the host emulation (cuda_runtime.h here).
#include "test_fused_kernels.cu"
