// tests/cuda/cuda_main.cu on the host emulation: the emulated device always
// exists, so nothing is skipped.
#include "cuda_main.cu"
