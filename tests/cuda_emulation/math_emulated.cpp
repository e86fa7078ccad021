// tests/cuda/test_cuda_math.cu on the host emulation (cuda_runtime.h here).
#include "test_cuda_math.cu"
