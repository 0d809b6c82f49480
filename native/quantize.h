// Quantization kernels: the argument blocks, and the table of per-ISA functions that is the one
// dispatch point (like ggml's type traits). Every kernel works on a row range [rowBegin, rowEnd)
// of a rows × cols tensor, so the binding can split work over threads; results never depend on
// the split because stochastic rounding draws by global element index (firstIndex + row·cols + col).
//
// Layouts are lib/kernels/contract.ts's: blocks along cols, rows padded to whole blocks, FP4 two
// per byte (element 2i in the low nibble), FP6 four per three little-endian bytes, one scale byte
// per block.
#pragma once
#include <cstddef>
#include <cstdint>

#include "error_sums.h"
#include "fgmp.h"
#include "formats.h"

namespace fp4kit {

struct ElementArgs {
  const void* src;  // f32 or 16-bit (dtype)
  int32_t dtype;
  int32_t format;
  int32_t rounding;
  uint32_t seed;
  uint64_t firstIndex;
  uint8_t* out;
  int64_t count;
};

struct BlockArgs {
  const void* src;  // quantize: input; dequantize: unused
  int32_t dtype;
  int64_t rows, cols;
  int32_t format;     // element format id (MX); e2m1 for NVFP4
  int32_t scaleRule;  // MX only
  int32_t rounding;
  uint32_t seed;
  uint64_t firstIndex;
  float tensorScale;  // NVFP4 only
  uint8_t* data;
  uint8_t* scales;
  float* out;         // dequantize output
};

// Bytes of one packed row of `cols` elements in blocks of `block` with `bits` per element.
static inline int64_t packedRowBytes(int64_t cols, int64_t block, int64_t bits) { return (cols + block - 1) / block * block * bits / 8; }

using ElementKernel = int64_t (*)(const ElementArgs&, int64_t begin, int64_t end);  // returns NaN count
using DecodeKernel = void (*)(const uint8_t* codes, int32_t format, float* out, int64_t begin, int64_t end);
using BlockKernel = void (*)(const BlockArgs&, int64_t rowBegin, int64_t rowEnd);
using AbsMaxKernel = uint32_t (*)(const void* src, int32_t dtype, int64_t begin, int64_t end);  // bits of max|x|, > 0x7f800000 if NaN
using FgmpKernel = void (*)(const FgmpArgs&, int64_t rowBegin, int64_t rowEnd);
// transpose.h: work items [itemBegin, itemEnd) of a transpose of 4-byte elements.
using TransposeKernel = void (*)(const uint32_t* src, int64_t rows, int64_t cols, uint32_t* dst, int64_t dstStride, int64_t itemBegin, int64_t itemEnd);
// tanh.h: out[i] = tanhf(x[i]) for i in [begin, end).
using TanhKernel = void (*)(const float* x, float* out, int64_t begin, int64_t end);

struct QuantizeKernels {
  const char* simd;  // "avx512", "avx2", "neon", "scalar"
  ElementKernel encodeElements;
  DecodeKernel decodeElements;
  BlockKernel quantizeMx;
  BlockKernel dequantizeMx;
  AbsMaxKernel absMax;
  BlockKernel quantizeNvfp4;
  BlockKernel dequantizeNvfp4;
  FgmpKernel fgmpCandidates;  // fgmp.h: rows [rowBegin, rowEnd)
  TransposeKernel transpose32;  // transpose.h
  TanhKernel tanh32;            // tanh.h
  ErrorSumsKernel errorSums;    // error_sums.h
};

// The plain scalar reference (quantize_scalar.cc) and the SIMD tables (quantize_avx2.cc,
// quantize_avx512.cc), which fall back to the scalar functions for what they do not vectorise.
extern const QuantizeKernels kScalarKernels;
#if defined(__x86_64__) || defined(_M_X64)
extern const QuantizeKernels kAvx2Kernels;
extern const QuantizeKernels kAvx512Kernels;
#endif
#if defined(__aarch64__)
extern const QuantizeKernels kNeonKernels;
#endif

// The table chosen once for this CPU; FP4KIT_SIMD=scalar|avx2|avx512 forces a level (never
// one the CPU lacks).
const QuantizeKernels& activeKernels();

}  // namespace fp4kit
