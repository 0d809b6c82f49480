// NEON quantization kernels (AArch64, where NEON is always present): the vector code of
// quantize_simd.h at 4 lanes, falling back to the scalar kernels for what it does not vectorise.
#define FP4KIT_LANES 4
#include "quantize_simd.h"

FP4KIT_VECTOR_KERNEL_TABLE(Neon, "neon")
