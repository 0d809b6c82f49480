// Scalar quantization kernels: a line-for-line port of lib/kernels/ref/ (elements.ts, mx.ts, nvfp4.ts), kept plain so it can
// be read beside the SIMD variants (quantize_avx2.cc, quantize_avx512.cc) that must equal it.
#include <algorithm>
#include <cstring>

#include "block_scale.h"
#include "element_codec.h"
#include "pack_codes.h"
#include "error_sums.h"
#include "quantize.h"
#include "tanh.h"
#include "transpose.h"

namespace fp4kit {
namespace {

int64_t encodeElementsScalar(const ElementArgs& a, int64_t begin, int64_t end) {
  const ElementFormat& f = kElementFormats[a.format];
  int64_t nans = 0;
  for (int64_t i = begin; i < end; i++) {
    const uint32_t b = loadBits(a.src, a.dtype, i);
    if (f.nanCode < 0 && (b & 0x7fffffff) > 0x7f800000u) nans++;
    const int64_t random = a.rounding == kStochastic ? static_cast<int64_t>(randomBits(a.seed, a.firstIndex + i)) : int64_t(-1);
    a.out[i] = encodeElementBits(b, f, random);
  }
  return nans;
}

void decodeElementsScalar(const uint8_t* codes, int32_t format, float* out, int64_t begin, int64_t end) {
  const ElementFormat& f = kElementFormats[format];
  float table[256];
  for (int c = 0; c < (1 << f.bits); c++) table[c] = decodeElement(c, f);
  for (int64_t i = begin; i < end; i++) out[i] = table[codes[i] & ((1 << f.bits) - 1)];
}

// Loads one block's float32 bits (zero-padded) and returns the bits of its max |x|.
uint32_t loadBlock(const void* src, int32_t dtype, int64_t start, int64_t count, uint32_t* bits, int64_t block) {
  uint32_t amax = 0;
  for (int64_t i = 0; i < block; i++) {
    bits[i] = i < count ? loadBits(src, dtype, start + i) : 0;
    amax = std::max(amax, bits[i] & 0x7fffffff);
  }
  return amax;
}

// Random bits of element `index` (counted from the call's first element) for stochastic rounding,
// or -1 for round-to-nearest-even.
inline int64_t randomFor(const BlockArgs& a, int64_t index) {
  return a.rounding == kStochastic ? static_cast<int64_t>(randomBits(a.seed, a.firstIndex + index)) : int64_t(-1);
}

// Visits each block of rows [rowBegin, rowEnd): its index, the index of its first element, how many
// elements it holds (the last block of a row may be short), the bits of its max |x| and its
// float32 bits zero-padded to Block.
template <int Block, typename Visit>
inline void forEachSourceBlock(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd, Visit visit) {
  const int64_t blocksPerRow = (a.cols + Block - 1) / Block;
  uint32_t bits[Block];
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    for (int64_t b = 0; b < blocksPerRow; b++) {
      const int64_t first = row * a.cols + b * Block;
      const int64_t count = std::min<int64_t>(Block, a.cols - b * Block);
      const uint32_t amax = loadBlock(a.src, a.dtype, first, count, bits, Block);
      visit(row * blocksPerRow + b, first, count, amax, bits);
    }
  }
}

void quantizeMxScalar(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) {
  const ElementFormat& f = kElementFormats[a.format];
  const int64_t blockBytes = kMxBlock * f.bits / 8;
  forEachSourceBlock<kMxBlock>(a, rowBegin, rowEnd, [&](int64_t blockIndex, int64_t first, int64_t count, uint32_t amax, const uint32_t* bits) {
    uint8_t codes[kMxBlock] = {};
    if (amax >= 0x7f800000u) {
      a.scales[blockIndex] = 0xff;  // NaN or Inf in the block: the whole block is NaN
    } else {
      const int32_t s = mxScaleExponent(amax, f, a.scaleRule == kScaleCeil);
      a.scales[blockIndex] = static_cast<uint8_t>(s + kE8m0Bias);
      for (int64_t i = 0; i < count; i++) codes[i] = quantizeScaledElement(bits[i], s, f, randomFor(a, first + i));
    }
    packCodes(codes, kMxBlock, f.bits, a.data + blockIndex * blockBytes);
  });
}

void dequantizeMxScalar(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) {
  const ElementFormat& f = kElementFormats[a.format];
  float table[256];
  for (int c = 0; c < (1 << f.bits); c++) table[c] = decodeElement(c, f);
  const int64_t blocksPerRow = (a.cols + kMxBlock - 1) / kMxBlock;
  const int64_t blockBytes = kMxBlock * f.bits / 8;
  uint8_t codes[kMxBlock];
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    for (int64_t b = 0; b < blocksPerRow; b++) {
      const int64_t blockIndex = row * blocksPerRow + b;
      unpackCodes(a.data + blockIndex * blockBytes, kMxBlock, f.bits, codes);
      const uint8_t code = a.scales[blockIndex];
      const float scale = code == 0xff ? NAN : std::ldexp(1.0f, code - kE8m0Bias);
      const int64_t col0 = b * kMxBlock;
      const int64_t count = std::min<int64_t>(kMxBlock, a.cols - col0);
      for (int64_t i = 0; i < count; i++) a.out[row * a.cols + col0 + i] = table[codes[i]] * scale;
    }
  }
}

uint32_t absMaxScalar(const void* src, int32_t dtype, int64_t begin, int64_t end) {
  uint32_t amax = 0;
  for (int64_t i = begin; i < end; i++) {
    const uint32_t a = loadBits(src, dtype, i) & 0x7fffffff;
    if (a > 0x7f800000u) return a;
    amax = std::max(amax, a);
  }
  return amax;
}

void quantizeNvfp4Scalar(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) {
  const ElementFormat& e2m1 = kElementFormats[kE2m1];
  const ElementFormat& e4m3 = kElementFormats[kE4m3];
  forEachSourceBlock<kNvfp4Block>(a, rowBegin, rowEnd, [&](int64_t blockIndex, int64_t first, int64_t count, uint32_t amax, const uint32_t* bits) {
    const float scaled = nvfp4ScaledBlockScale(bitsToFloat(amax), a.tensorScale);
    const uint8_t scaleCode = encodeElementBits(floatToBits(scaled), e4m3, -1);
    a.scales[blockIndex] = scaleCode;
    const float total = a.tensorScale * decodeElement(scaleCode, e4m3);
    uint8_t codes[kNvfp4Block] = {};
    // A NaN block (NaN scale, 0x7f): every element code 0, as in the reference.
    const int64_t elements = total != total ? 0 : count;
    for (int64_t i = 0; i < elements; i++) {
      float v = bitsToFloat(bits[i]) / total;
      if (v > 6.0f) v = 6.0f;
      else if (v < -6.0f) v = -6.0f;
      codes[i] = quantizeScaledElement(floatToBits(v), 0, e2m1, randomFor(a, first + i));
    }
    packCodes(codes, kNvfp4Block, 4, a.data + blockIndex * 8);
  });
}

void dequantizeNvfp4Scalar(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) {
  const ElementFormat& e2m1 = kElementFormats[kE2m1];
  const ElementFormat& e4m3 = kElementFormats[kE4m3];
  const int64_t blocksPerRow = (a.cols + kNvfp4Block - 1) / kNvfp4Block;
  uint8_t codes[kNvfp4Block];
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    for (int64_t b = 0; b < blocksPerRow; b++) {
      const int64_t blockIndex = row * blocksPerRow + b;
      unpackCodes(a.data + blockIndex * 8, kNvfp4Block, 4, codes);
      const float total = a.tensorScale * decodeElement(a.scales[blockIndex], e4m3);
      const int64_t col0 = b * kNvfp4Block;
      const int64_t count = std::min<int64_t>(kNvfp4Block, a.cols - col0);
      for (int64_t i = 0; i < count; i++) a.out[row * a.cols + col0 + i] = decodeElement(codes[i], e2m1) * total;
    }
  }
}

}  // namespace

const QuantizeKernels kScalarKernels = {
    "scalar", encodeElementsScalar, decodeElementsScalar, quantizeMxScalar, dequantizeMxScalar,
    absMaxScalar, quantizeNvfp4Scalar, dequantizeNvfp4Scalar, fgmpCandidatesScalar,
    transposeMatrices32, tanhFloat32, errorSumsScalar,
};

}  // namespace fp4kit
