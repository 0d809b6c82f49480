// AVX2 quantization kernels (this file alone is built with -mavx2): the vector code of
// quantize_simd.h at 8 lanes, falling back to the scalar kernels for the cases it does not
// vectorise (element casts, FP6/FP8/INT8 dequantize).
#define FP4KIT_LANES 8
#include "quantize_simd.h"

FP4KIT_VECTOR_KERNEL_TABLE(Avx2, "avx2")
