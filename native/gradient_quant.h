// Gradient quantizers of 1-bit FQT (lib/kernels/ref/gradient-quant.ts documents the steps and
// their float order; this is the C++ twin, bit for bit): per-group affine b-bit codes with
// stochastic rounding, per tensor / sample (row) / channel (column), with AGP or top-k pruning.
#pragma once
#include <cstdint>

namespace fp4kit {

enum GradientGroups : int32_t { kGroupsTensor = 0, kGroupsSample = 1, kGroupsChannel = 2 };
enum GradientPrune : int32_t { kPruneNone = 0, kPruneAgp = 1, kPruneTopk = 2 };

struct GradientArgs {
  const float* src;  // rows × cols
  int64_t rows, cols;
  int32_t bits, groups, prune;
  uint32_t seed;
  uint8_t* codes;    // rows × cols
  float* scales;     // one per group
  float* zeros;
  uint8_t* mask;
  float* keepProbability;
};

struct GradientDequantArgs {
  const uint8_t* codes;
  const float* scales;
  const float* zeros;
  const uint8_t* mask;
  int64_t rows, cols;
  int32_t groups;
  float* out;
};

int64_t gradientGroupCount(int64_t rows, int64_t cols, int32_t groups);

// The whole quantizer (threaded over rows). Returns −1, or the flat index of the first
// non-finite element of src (the outputs are then unspecified).
int64_t quantizeGradient(const GradientArgs& a);

void dequantizeGradient(const GradientDequantArgs& a);

}  // namespace fp4kit
