// NEON quantization kernels (AArch64, where NEON is always present): the vector code of
// quantize_simd.h at 4 lanes, falling back to the scalar kernels for what it does not vectorise.
#define FP4KIT_LANES 4
#include "quantize_simd.h"

namespace fp4kit {
namespace {

void quantizeMxNeon(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) { quantizeMxVector(a, rowBegin, rowEnd, kScalarKernels.quantizeMx); }
void dequantizeMxNeon(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) { dequantizeMxVector(a, rowBegin, rowEnd, kScalarKernels.dequantizeMx); }
void quantizeNvfp4Neon(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) { quantizeNvfp4Vector(a, rowBegin, rowEnd, kScalarKernels.quantizeNvfp4); }
void dequantizeNvfp4Neon(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) { dequantizeNvfp4Vector(a, rowBegin, rowEnd, kScalarKernels.dequantizeNvfp4); }
uint32_t absMaxNeon(const void* src, int32_t dtype, int64_t begin, int64_t end) { return absMaxVector(src, dtype, begin, end); }

}  // namespace

const QuantizeKernels kNeonKernels = {
    "neon", kScalarKernels.encodeElements, kScalarKernels.decodeElements, quantizeMxNeon, dequantizeMxNeon,
    absMaxNeon, quantizeNvfp4Neon, dequantizeNvfp4Neon,
};

}  // namespace fp4kit
