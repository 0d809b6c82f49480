// AVX-512 quantization kernels (this file alone is built with -mavx512f/bw/vl/dq): hand-written
// intrinsics for the hot case — E2M1 elements (MXFP4, NVFP4) rounded to nearest from float32 or
// bf16 — and the vector code of quantize_simd.h, compiled for this ISA, for everything else.
// Both equal the scalar kernels bit for bit (test/native/kernels_selftest.cc).
#include <immintrin.h>

#include <cstring>

#define FP4KIT_LANES 16
#include "quantize_simd.h"
#include "transpose.h"

namespace fp4kit {
namespace {

// 16 float32 bit patterns of src[i..i+16): float32 as is, bf16 widened (exact).
inline __m512i load16(const void* src, int32_t dtype, int64_t i) {
  if (dtype == kF32) return _mm512_loadu_si512(static_cast<const uint32_t*>(src) + i);
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(src) + i));
  return _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
}

// max over the 16 lanes, in every lane (values are |x| bits < 2^31).
inline __m512i broadcastMax(__m512i v) {
  v = _mm512_max_epu32(v, _mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_max_epu32(v, _mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = _mm512_max_epu32(v, _mm512_shuffle_epi32(v, _MM_PERM_BADC));
  return _mm512_max_epu32(v, _mm512_shuffle_epi32(v, _MM_PERM_CDAB));
}

// E2M1 codes of |v| (already divided by the block scale) with the sign of `x`: per binade scale
// by the inverse quantum (0.5 below 2, 1 below 4, else 2), round to nearest even in the
// conversion, add the binade's first code, saturate at 7 (6.0). As e2m1NearestFromScaled.
inline __m512i e2m1Codes(__m512 v, __m512i x) {
  const __mmask16 atLeast2 = _mm512_cmp_ps_mask(v, _mm512_set1_ps(2.0f), _CMP_GE_OQ);
  const __mmask16 atLeast4 = _mm512_cmp_ps_mask(v, _mm512_set1_ps(4.0f), _CMP_GE_OQ);
  __m512 inverseQuantum = _mm512_mask_blend_ps(atLeast2, _mm512_set1_ps(2.0f), _mm512_set1_ps(1.0f));
  inverseQuantum = _mm512_mask_blend_ps(atLeast4, inverseQuantum, _mm512_set1_ps(0.5f));
  __m512i code = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v, inverseQuantum), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512i two = _mm512_set1_epi32(2);
  code = _mm512_mask_add_epi32(code, atLeast2, code, two);
  code = _mm512_mask_add_epi32(code, atLeast4, code, two);
  code = _mm512_min_epi32(code, _mm512_set1_epi32(7));
  // code | ((x >> 28) & 8)
  return _mm512_ternarylogic_epi32(code, _mm512_srli_epi32(x, 28), _mm512_set1_epi32(8), 0xf8);
}

// 32 codes (two vectors) → 16 bytes, element 2i in the low nibble of byte i.
inline void storeNibbles32(__m512i c0, __m512i c1, uint8_t* out) {
  const __m256i bytes = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtepi32_epi8(c0)), _mm512_cvtepi32_epi8(c1), 1);
  const __m256i pairs = _mm256_maddubs_epi16(bytes, _mm256_set1_epi16(0x1001));  // even + 16·odd
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_cvtepi16_epi8(pairs));
}

inline void storeNibbles16(__m512i c, uint8_t* out) {
  const __m128i pairs = _mm_maddubs_epi16(_mm512_cvtepi32_epi8(c), _mm_set1_epi16(0x1001));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(pairs, pairs));
}

// A function, not a namespace-scope constant: GCC initialises such a constant at load time with an
// AVX-512 instruction, which killed the whole addon with SIGILL on CPUs without AVX-512 (this file's
// code runs only after dispatch chose it; test/native-selftest.test.ts loads the addon on an
// emulated AVX2-only CPU).
inline __m512i absMask() { return _mm512_set1_epi32(0x7fffffff); }

// floor(log2 a) of finite, nonzero |x| bits per lane, exact for float32 subnormals too.
inline __m512i floorLog2(__m512i a) {
  const __m512i biased = _mm512_srli_epi32(a, 23);
  const __m512i lead = _mm512_sub_epi32(_mm512_srli_epi32(_mm512_castps_si512(_mm512_cvtepi32_ps(a)), 23), _mm512_set1_epi32(127));
  const __mmask16 subnormal = _mm512_cmpeq_epi32_mask(biased, _mm512_setzero_si512());
  return _mm512_mask_sub_epi32(_mm512_sub_epi32(biased, _mm512_set1_epi32(127)), subnormal, lead, _mm512_set1_epi32(149));
}

// A one-row view of row `row` from block `block` on (block size `size`, `blockBytes` packed bytes
// per block). Its firstIndex keeps the global element index, so stochastic draws are unchanged.
BlockArgs restOfRow(const BlockArgs& a, int64_t row, int64_t block, int64_t size, int64_t blockBytes) {
  const int64_t blocksPerRow = (a.cols + size - 1) / size;
  const int64_t start = row * a.cols + block * size;
  BlockArgs rest = a;
  rest.src = static_cast<const uint8_t*>(a.src) + start * sourceElementBytes(a.dtype);
  rest.cols = a.cols - block * size;
  rest.firstIndex = a.firstIndex + static_cast<uint64_t>(start);
  rest.data = a.data + (row * blocksPerRow + block) * blockBytes;
  rest.scales = a.scales + row * blocksPerRow + block;
  return rest;
}

// MXFP4, nearest: 16 whole blocks (512 elements) of one row from `start`. Returns false (having
// written nothing) if a block holds NaN or Inf; the caller then takes the general path.
bool mxfp4Group(const BlockArgs& a, int64_t start, uint8_t* data, uint8_t* scales) {
  __m512i x[16][2];
  __m512i amax = _mm512_setzero_si512();
  for (int b = 0; b < 16; b++) {
    x[b][0] = load16(a.src, a.dtype, start + 32 * b);
    x[b][1] = load16(a.src, a.dtype, start + 32 * b + 16);
    const __m512i m = _mm512_max_epu32(_mm512_and_si512(x[b][0], absMask()), _mm512_and_si512(x[b][1], absMask()));
    amax = _mm512_mask_mov_epi32(amax, static_cast<__mmask16>(1u << b), broadcastMax(m));
  }
  if (_mm512_cmpge_epu32_mask(amax, _mm512_set1_epi32(0x7f800000)) != 0) return false;
  // s = floor(log2 amax) − 2, all-zero blocks −128, clamped to ≥ −127 (mxScaleExponent)
  const __mmask16 zero = _mm512_cmpeq_epi32_mask(amax, _mm512_setzero_si512());
  __m512i s = _mm512_sub_epi32(floorLog2(amax), _mm512_set1_epi32(2));
  s = _mm512_mask_mov_epi32(s, zero, _mm512_set1_epi32(-128));
  s = _mm512_max_epi32(s, _mm512_set1_epi32(-127));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(scales), _mm512_cvtepi32_epi8(_mm512_add_epi32(s, _mm512_set1_epi32(kE8m0Bias))));
  const __m512 inverse = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_sub_epi32(_mm512_set1_epi32(127), s), 23));  // 2^−s, s ≤ 125
  for (int b = 0; b < 16; b++) {
    const __m512 inv = _mm512_permutexvar_ps(_mm512_set1_epi32(b), inverse);
    const __m512i c0 = e2m1Codes(_mm512_mul_ps(_mm512_castsi512_ps(_mm512_and_si512(x[b][0], absMask())), inv), x[b][0]);
    const __m512i c1 = e2m1Codes(_mm512_mul_ps(_mm512_castsi512_ps(_mm512_and_si512(x[b][1], absMask())), inv), x[b][1]);
    storeNibbles32(c0, c1, data + 16 * b);
  }
  return true;
}

// Each row in groups of 16 whole blocks (`group(start, blockIndex)`, false = leave the rest of the
// row); the rest of the row (fewer than 16 blocks, a ragged block, or a group the fast path
// refused, e.g. NaN/Inf) takes the general vector path `rest`.
template <typename Group>
void wholeGroupsOf16(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd, int64_t blockSize, int64_t bytesPerBlock,
                     void (*rest)(const BlockArgs&, int64_t, int64_t, BlockKernel), BlockKernel scalar, Group group) {
  const int64_t blocksPerRow = (a.cols + blockSize - 1) / blockSize;
  const int64_t fullBlocks = a.cols / blockSize;
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    int64_t b = 0;
    for (; b + 16 <= fullBlocks; b += 16) {
      if (!group(row * a.cols + b * blockSize, row * blocksPerRow + b)) break;
    }
    if (b < blocksPerRow) rest(restOfRow(a, row, b, blockSize, bytesPerBlock), 0, 1, scalar);
  }
}

void quantizeMxAvx512(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) {
  const bool fast = a.format == kE2m1 && a.rounding == kNearest && a.scaleRule == kScaleFloor && (a.dtype == kF32 || a.dtype == kBf16);
  if (!fast) {
    quantizeMxVector(a, rowBegin, rowEnd, kScalarKernels.quantizeMx);
    return;
  }
  wholeGroupsOf16(a, rowBegin, rowEnd, kMxBlock, 16, quantizeMxVector, kScalarKernels.quantizeMx, [&](int64_t start, int64_t blockIndex) {
    return mxfp4Group(a, start, a.data + blockIndex * 16, a.scales + blockIndex);
  });
}

// NVFP4, nearest: 16 whole blocks (256 elements) of one row from `start`.
void nvfp4Group(const BlockArgs& a, int64_t start, uint8_t* data, uint8_t* scales, const float* e4m3Values) {
  __m512i x[16];
  __m512i amax = _mm512_setzero_si512();
  for (int b = 0; b < 16; b++) {
    x[b] = load16(a.src, a.dtype, start + 16 * b);
    amax = _mm512_mask_mov_epi32(amax, static_cast<__mmask16>(1u << b), broadcastMax(_mm512_and_si512(x[b], absMask())));
  }
  // clamp((amax / 6) / tensorScale, 2^−6, 448) then E4M3 (nvfp4ScaledBlockScale + encode)
  __m512 scaled = _mm512_div_ps(_mm512_div_ps(_mm512_castsi512_ps(amax), _mm512_set1_ps(6.0f)), _mm512_set1_ps(a.tensorScale));
  const __mmask16 nan = _mm512_cmp_ps_mask(scaled, scaled, _CMP_UNORD_Q);
  scaled = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(scaled, _mm512_set1_ps(0.015625f), _CMP_LT_OQ), scaled, _mm512_set1_ps(0.015625f));
  scaled = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(scaled, _mm512_set1_ps(448.0f), _CMP_GT_OQ), scaled, _mm512_set1_ps(448.0f));
  U32v codes = quantizeScaledVector((U32v)_mm512_castps_si512(scaled), 0, kElementFormats[kE4m3], false, U32v{});
  if (nan) {
    for (int b = 0; b < 16; b++) {
      if (nan & (1u << b)) codes[b] = 0x7f;  // e4m3 of NaN, as the scalar encode gives
    }
  }
  const __m512i scaleCodes = (__m512i)codes;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(scales), _mm512_cvtepi32_epi8(scaleCodes));
  const __m512 total = _mm512_mul_ps(_mm512_set1_ps(a.tensorScale), _mm512_i32gather_ps(scaleCodes, e4m3Values, 4));
  const __m512 six = _mm512_set1_ps(6.0f), minusSix = _mm512_set1_ps(-6.0f);
  for (int b = 0; b < 16; b++) {
    const __m512 t = _mm512_permutexvar_ps(_mm512_set1_epi32(b), total);
    __m512 v = _mm512_div_ps(_mm512_castsi512_ps(x[b]), t);
    v = _mm512_min_ps(six, _mm512_max_ps(minusSix, v));  // vmaxps/vminps return the 2nd operand for NaN: NaN stays NaN
    const __m512i vb = _mm512_castps_si512(v);
    storeNibbles16(e2m1Codes(_mm512_castsi512_ps(_mm512_and_si512(vb, absMask())), vb), data + 8 * b);
  }
  for (int b = 0; b < 16; b++) {
    if (nan & (1u << b)) std::memset(data + 8 * b, 0, 8);  // a NaN block: every element code 0, as in the reference
  }
}

void quantizeNvfp4Avx512(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) {
  if (a.rounding != kNearest || (a.dtype != kF32 && a.dtype != kBf16)) {
    quantizeNvfp4Vector(a, rowBegin, rowEnd, kScalarKernels.quantizeNvfp4);
    return;
  }
  float e4m3Values[256];
  for (int c = 0; c < 256; c++) e4m3Values[c] = decodeElement(c, kElementFormats[kE4m3]);
  wholeGroupsOf16(a, rowBegin, rowEnd, kNvfp4Block, 8, quantizeNvfp4Vector, kScalarKernels.quantizeNvfp4, [&](int64_t start, int64_t blockIndex) {
    nvfp4Group(a, start, a.data + blockIndex * 8, a.scales + blockIndex, e4m3Values);
    return true;
  });
}

void dequantizeMxAvx512(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) { dequantizeMxVector(a, rowBegin, rowEnd, kScalarKernels.dequantizeMx); }
void dequantizeNvfp4Avx512(const BlockArgs& a, int64_t rowBegin, int64_t rowEnd) { dequantizeNvfp4Vector(a, rowBegin, rowEnd, kScalarKernels.dequantizeNvfp4); }
uint32_t absMaxAvx512(const void* src, int32_t dtype, int64_t begin, int64_t end) { return absMaxVector(src, dtype, begin, end); }
int64_t encodeElementsAvx512(const ElementArgs& a, int64_t begin, int64_t end) { return encodeElementsVector(a, begin, end, kScalarKernels.encodeElements); }
void decodeElementsAvx512(const uint8_t* codes, int32_t format, float* out, int64_t begin, int64_t end) {
  decodeElementsVectorKernel(codes, format, out, begin, end, kScalarKernels.decodeElements);
}

}  // namespace

const QuantizeKernels kAvx512Kernels = {
    "avx512", encodeElementsAvx512, decodeElementsAvx512, quantizeMxAvx512, dequantizeMxAvx512,
    absMaxAvx512, quantizeNvfp4Avx512, dequantizeNvfp4Avx512, fgmpCandidatesVector,
    transposeMatrices32Avx512, tanhFloat32Avx512, errorSumsVector,
};

}  // namespace fp4kit
