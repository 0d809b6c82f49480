// Avx512 quantization kernels (this file alone is built with -mavx512f -mavx512bw -mavx512vl -mavx512dq): the vector code of
// quantize_simd.h compiled for this ISA, falling back to the scalar kernels for the cases it
// does not vectorise (element casts, FP6/FP8/INT8 dequantize, ragged last blocks).
#define FP4KIT_LANES 16
#include "quantize_simd.h"

namespace fp4kit {
namespace {

void quantizeMxAvx512(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) { quantizeMxVector(a, rowBegin, rowEnd, kScalarKernels.quantizeMx); }
void dequantizeMxAvx512(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) { dequantizeMxVector(a, rowBegin, rowEnd, kScalarKernels.dequantizeMx); }
void quantizeNvfp4Avx512(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) { quantizeNvfp4Vector(a, rowBegin, rowEnd, kScalarKernels.quantizeNvfp4); }
void dequantizeNvfp4Avx512(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) { dequantizeNvfp4Vector(a, rowBegin, rowEnd, kScalarKernels.dequantizeNvfp4); }
uint32_t absMaxAvx512(const void* src, int32_t dtype, int64_t begin, int64_t end) { return absMaxVector(src, dtype, begin, end); }

}  // namespace

const QuantizeKernels kAvx512Kernels = {
    "avx512", kScalarKernels.encodeElements, kScalarKernels.decodeElements, quantizeMxAvx512, dequantizeMxAvx512,
    absMaxAvx512, quantizeNvfp4Avx512, dequantizeNvfp4Avx512,
};

}  // namespace fp4kit
