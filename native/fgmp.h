// FGMP candidates (lib/fgmp/quantize.ts, candidates()): for every block of 16, both encodings —
// NVFP4 (E2M1 under an E4M3 block scale, with sensitivity-weighted clipping) and E4M3 under the
// per-tensor FP8 scale — and the Fisher-weighted impact of choosing FP4. The same float32 and
// float64 steps in the same order as lib/fgmp/blocks.ts, so the bytes and impacts are identical.
#pragma once
#include <cstdint>

namespace fp4kit {

struct FgmpArgs {
  const void* x;            // rows × cols, float32, bf16 or f16 (dtype)
  int32_t dtype;            // DtypeId (formats.h): read widened exactly to float32
  int64_t rows, cols;
  const float* fisher;      // nullptr, rows × cols, or cols (per input channel)
  bool fisherPerElement;
  float tensorScale, fp8Scale;
  bool clipping;
  double* impacts;          // one per block
  uint8_t* fp4Codes;        // 16 per block
  uint8_t* fp4Scales;       // 1 per block
  uint8_t* fp8Codes;        // 16 per block
};

constexpr int64_t kFgmpBlock = 16;

// The values of every E2M1 and E4M3 code (the sign of −0 kept; NaN codes NaN): FGMP's candidates
// (fgmp.cc) and its dequantization (fgmp_dequantize.cc) read them.
struct FgmpValueTables {
  float e2m1[16];
  float e4m3[256];
};
const FgmpValueTables& fgmpValueTables();

// The plain scalar reference (fgmp.cc); the vector variants (fgmp_simd.h) sit in each ISA's
// quantize table (quantize.h, activeKernels().fgmpCandidates).
void fgmpCandidatesScalar(const FgmpArgs& a, int64_t rowBegin, int64_t rowEnd);

}  // namespace fp4kit
