// The AVX-512 VNNI block matmul kernel, included by one source file per nibble decoder
// (matmul_avx512.cc: vpshufb, AVX-512BW; matmul_avx512_vbmi.cc: vpermb, AVX-512 VBMI), each built
// with its own instruction-set flags. Everything here has internal linkage, so each file gets its
// own copy compiled for its own flags.
//
// Same integer dot products and the same float32 steps, lane by lane, as matmulFp4Int8Scalar:
// each of the 16 lanes of a vector is one output column, so lanes never mix their sums. FGMP FP8
// lanes add two u8 planes (matmul.h) whose dot products run over the FP8 slots a tile pair shares
// (~10 of 32 lanes at 30% FP8) and are permuted into place, so the FP8 work follows the FP8
// fraction instead of costing two extra planes on every lane of every tile.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "matmul.h"
#include "matmul_avx512_shared.h"

namespace fp4kit {
namespace {

constexpr int kRowsPerStep = static_cast<int>(kAvx512Fp4StepRows);
constexpr int64_t kPrefetchGroups = 32;  // groups of 8 k (64 bytes) ahead, per tile, for one-row steps

// E2M1 code → (2w + 12), an unsigned byte for vpdpbusd (the +12 is removed with 12·Σk per unit),
// in every 16-byte lane: a table for vpshufb (4 index bits) and for vpermb (6 bits, period 16).
inline __m512i e2m1Lut() {
  const __m128i t = _mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
  return _mm512_broadcast_i32x4(t);
}

// The 16 lane multipliers of one tile-unit from any ScaleStorage (matmul.h): binary16 E4M3 values
// times the tensor scale (one exact conversion, one multiply), E8M0 codes shifted into the
// exponent field, or the floats themselves.
template <ScaleStorage Storage>
inline __m512 loadLaneScales(const PackedFp4Weights& b, int64_t tileUnit, __m512 tensorScale) {
  if (Storage == ScaleStorage::Half) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.compactScales.data() + tileUnit * 32));
    return _mm512_mul_ps(_mm512_cvtph_ps(h), tensorScale);
  }
  if (Storage == ScaleStorage::E8m0) {
    const __m128i codes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.compactScales.data() + tileUnit * 16));
    return compactE8m0Multipliers16(codes);
  }
  return _mm512_loadu_ps(b.scales.data() + tileUnit * kTileColumns);
}

// Tiles [tile0, tile0 + tiles) of compact lane scales decoded to floats ([t][units][16]): a
// many-row call reads each tile's scales once per 4 rows, so it decodes them once per tile instead.
template <ScaleStorage Storage>
const float* decodedLaneScales(const PackedFp4Weights& b, int64_t tile0, int tiles) {
  const __m512 tensorScale = _mm512_set1_ps(b.tensorScale);
  return laneScalesAsFloats(tiles, b.units, 0, b.units,
                            [&](int64_t t, int64_t j) { return loadLaneScales<Storage>(b, (tile0 + t) * b.units + j, tensorScale); });
}

// One activation row (decode) streams every weight byte once from L3 or DRAM; prefetching each
// tile's nibbles 2 KiB ahead and its scales 16 units ahead (prefetchAt) kept the 8 streams of a
// 4-tile step fed (M = 1 from DRAM: nvfp4 0.84× → 1.1× the peer, mxfp4 1.18× → 1.3×).

template <ScaleStorage Storage>
inline void prefetchLaneScales(const PackedFp4Weights& b, int64_t tileUnit) {
  prefetchAt(b.compactScales.data(), tileUnit * (Storage == ScaleStorage::Half ? 32 : 16));
}

// Rows × Tiles independent accumulator chains: enough parallel dot products to hide the
// dpbusd latency both for many rows (prefill) and for one row (decode, where Tiles carries it).
// tileScales: Float32 lane scales of tiles tile0.., [t][units][16] (b.scales or decoded ones);
// compact storages are read directly instead.
// Rows [m0, m0 + Rows): a block of `rows` (layoutRowBlocks: chains start at −12·Σk, FP8 fixes
// kFp8Bias·Σk).
template <class Decoder, int Rows, int Tiles, int Groups, ScaleStorage Storage, bool FastScales>
void step(const RowBlocks& rows, const PackedFp4Weights& b, const float* tileScales, const float* bias, float* out,
          int64_t tile0, int64_t m0) {
  const Decoder decode;
  const __m512 tensorScale = _mm512_set1_ps(b.tensorScale);
  const __m512 unitScale = _mm512_set1_ps(b.hasFp8 ? 1.0f / 32768.0f : 1.0f / 128.0f);  // 2^-unitShift
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const int64_t groupsPerUnit = Groups > 0 ? Groups : b.unit / 8;
  __m512 acc[Rows][Tiles];
  for (int r = 0; r < Rows; r++)
    for (int t = 0; t < Tiles; t++) acc[r][t] = _mm512_setzero_ps();
  const int64_t quadsPerUnit = b.unit / 4;
  // This block's rows, each array read through one pointer (index·Rows + r).
  const int32_t* codes = rows.codes.data() + m0 * rows.quads;
  const int32_t* starts = rows.starts.data() + m0 * rows.units;
  const int32_t* fixes = b.hasFp8 ? rows.fixes.data() + m0 * rows.units : nullptr;
  const int32_t* shifts = rows.shifts.data() + m0 * rows.blocks;
  const float* scales = rows.scales.data() + m0 * rows.blocks;
  for (int64_t j = 0; j < b.units; j++, codes += quadsPerUnit * Rows, starts += Rows) {
    // Each dot starts at −12·Σk: the LUT's +12 offset on every weight, removed up front.
    __m512i dot[Rows][Tiles];
    for (int r = 0; r < Rows; r++) {
      const __m512i start = _mm512_set1_epi32(starts[r]);
      for (int t = 0; t < Tiles; t++) dot[r][t] = start;
    }
    for (int64_t g = j * groupsPerUnit; g < (j + 1) * groupsPerUnit; g++) {
      const int64_t quad = 2 * (g - j * groupsPerUnit);  // within the unit
      __m512i lo[Tiles], hi[Tiles];
      for (int t = 0; t < Tiles; t++) {
        const __m512i v = _mm512_loadu_si512(b.nibbles.data() + ((tile0 + t) * b.kGroups + g) * 64);
        if (Rows == 1) prefetchAt(b.nibbles.data(), ((tile0 + t) * b.kGroups + g + kPrefetchGroups) * 64);
        lo[t] = decode.low(v);
        hi[t] = decode.high(v);
      }
      for (int r = 0; r < Rows; r++) {
        const __m512i a0 = _mm512_set1_epi32(codes[quad * Rows + r]);
        const __m512i a1 = _mm512_set1_epi32(codes[(quad + 1) * Rows + r]);
        for (int t = 0; t < Tiles; t++) {
          dot[r][t] = _mm512_dpbusd_epi32(dot[r][t], lo[t], a0);
          dot[r][t] = _mm512_dpbusd_epi32(dot[r][t], hi[t], a1);
        }
      }
    }
    if (b.hasFp8) {
      for (int r = 0; r < Rows; r++)
        for (int t = 0; t < Tiles; t++) dot[r][t] = _mm512_slli_epi32(dot[r][t], 8);
      // FP8 lanes: x already rode in the nibbles; add Σk·A + 2048·Σk·B − kFp8Bias·Σk (matmul.h),
      // computed once per slot group (both tiles of a pair) and permuted into each tile's lanes.
      // Full 64-byte loads may run past a group, never past the store's 64 bytes of padding.
      __mmask16 lanes[Tiles];
      Fp8Place place[Tiles];
#pragma GCC unroll 4
      for (int t = 0; t < Tiles; t++) {
        const int64_t tu = (tile0 + t) * b.units + j;
        lanes[t] = b.fp8Lanes[static_cast<size_t>(tu)];
        place[t] = fp8Place(b, tu);
      }
#pragma GCC unroll 4
      for (int t = 0; t < Tiles; t++) {
        if (lanes[t] == 0) continue;
        if (t > 0 && lanes[t - 1] != 0 && place[t - 1].offset == place[t].offset) continue;  // done with t − 1
        const int next = t + 1 < Tiles ? t + 1 : t;
        const bool pair = next != t && lanes[next] != 0 && place[next].offset == place[t].offset;
        const uint8_t* group = b.fp8Planes.data() + place[t].offset;
        const int64_t stride = 4 * place[t].span;
        const uint8_t* planeA = group + 8 + 4 * stride;  // the nonzero A dwords, q by q
        __m512i pa[4], pb[4];  // unit 16: four groups of 4 k (FGMP only)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
          uint16_t present;
          __builtin_memcpy(&present, group + 2 * q, 2);
          pb[q] = _mm512_loadu_si512(group + 8 + q * stride);
          __m512i packed = _mm512_loadu_si512(planeA);
          __asm__("" : "+v"(packed));  // keeps vpexpandd in register form (see below)
          pa[q] = _mm512_maskz_expand_epi32(present, packed);
          planeA += 4 * __builtin_popcount(present);
        }
        // Lane l (the i-th set bit of lanes) takes slot first + i: a vpermd index by one
        // register-form vpexpandd (the memory form made the kernel ~2× slower on AMD Zen 5).
        const __m512i idx0 = _mm512_maskz_expand_epi32(lanes[t], _mm512_add_epi32(iota, _mm512_set1_epi32(place[t].first)));
        const __m512i idx1 = pair ? _mm512_maskz_expand_epi32(lanes[next], _mm512_add_epi32(iota, _mm512_set1_epi32(place[next].first)))
                                  : idx0;
#pragma GCC unroll 4
        for (int r = 0; r < Rows; r++) {
          __m512i da = _mm512_setzero_si512(), db = _mm512_setzero_si512();
#pragma GCC unroll 4
          for (int q = 0; q < 4; q++) {
            const __m512i av = _mm512_set1_epi32(codes[q * Rows + r]);
            da = _mm512_dpbusd_epi32(da, pa[q], av);
            db = _mm512_dpbusd_epi32(db, pb[q], av);
          }
          const __m512i fix = _mm512_set1_epi32(fixes[j * Rows + r]);
          const __m512i comb = _mm512_sub_epi32(_mm512_add_epi32(da, _mm512_slli_epi32(db, kFp8HighShift)), fix);
          dot[r][t] = _mm512_mask_add_epi32(dot[r][t], lanes[t], dot[r][t], _mm512_permutexvar_epi32(idx0, comb));
          if (pair) dot[r][next] = _mm512_mask_add_epi32(dot[r][next], lanes[next], dot[r][next], _mm512_permutexvar_epi32(idx1, comb));
        }
      }
    }
    const int64_t aBlock = (j * b.unit) / 32;
    for (int t = 0; t < Tiles; t++) {
      const __m512 sb = Storage == ScaleStorage::Float32 ? _mm512_loadu_ps(tileScales + (t * b.units + j) * kTileColumns)
                                                         : loadLaneScales<Storage>(b, (tile0 + t) * b.units + j, tensorScale);
      if (Rows == 1) {
        if (Storage == ScaleStorage::Float32) prefetchAt(tileScales, (t * b.units + j + 16) * kTileColumns * 4);
        else prefetchLaneScales<Storage>(b, (tile0 + t) * b.units + j + 16);
      }
      for (int r = 0; r < Rows; r++)
        acc[r][t] = addUnitWith<FastScales>(acc[r][t], dot[r][t], sb, shifts[aBlock * Rows + r], scales[aBlock * Rows + r], unitScale);
    }
  }
  storeTiles<Rows, Tiles>(acc, bias, out, b.n, tile0, m0);
}

// Rows [m0, m0 + Rows), with the fast-scales epilogue when every one of them qualifies.
template <class Decoder, int Rows, int Tiles, int Groups, ScaleStorage Storage>
void rowsStep(const Int8Activations& a, const RowBlocks& rows, const PackedFp4Weights& b, const float* tileScales, const float* bias,
              float* out, int64_t tile0, int64_t m0) {
  if (rowsTakeFastScales<Rows>(a, m0)) step<Decoder, Rows, Tiles, Groups, Storage, true>(rows, b, tileScales, bias, out, tile0, m0);
  else step<Decoder, Rows, Tiles, Groups, Storage, false>(rows, b, tileScales, bias, out, tile0, m0);
}

// Every row against tiles [tile0, tile0 + Tiles); compact scales are decoded once for all the rows.
template <class Decoder, int Tiles, int Groups, ScaleStorage Storage>
void tilesStep(const Int8Activations& a, const RowBlocks& rows, const PackedFp4Weights& b, const float* bias, float* out, int64_t tile0) {
  constexpr ScaleStorage F32 = ScaleStorage::Float32;
  const float* tileScales = Storage == F32 ? b.scales.data() + tile0 * b.units * kTileColumns : decodedLaneScales<Storage>(b, tile0, Tiles);
  int64_t m = 0;
  for (; m + kRowsPerStep <= a.rows; m += kRowsPerStep) rowsStep<Decoder, kRowsPerStep, Tiles, Groups, F32>(a, rows, b, tileScales, bias, out, tile0, m);
  // The rest (exactly this call's tiles): one step of its 2–3 rows after a whole step or when they
  // are all the rows (laid out as one block: avx512Fp4LayoutRows), else one row at a time
  // (RowBlocks' layout, matmul.h).
  const int64_t rest = a.rows - m;
  const bool oneBlock = m > 0 || rows.stepRows == a.rows;
  if (oneBlock && rest == 3) rowsStep<Decoder, 3, Tiles, Groups, F32>(a, rows, b, tileScales, bias, out, tile0, m);
  else if (oneBlock && rest == 2) rowsStep<Decoder, 2, Tiles, Groups, F32>(a, rows, b, tileScales, bias, out, tile0, m);
  else
    for (; m < a.rows; m++) rowsStep<Decoder, 1, Tiles, Groups, F32>(a, rows, b, tileScales, bias, out, tile0, m);
}

template <class Decoder, int Groups, ScaleStorage Storage>
void matmulTiles(const Int8Activations& a, const RowBlocks& rows, const PackedFp4Weights& b, const float* bias, float* out,
                 int64_t tileBegin, int64_t tileEnd) {
  int64_t tile = tileBegin;
  if (b.hasFp8 && (tile & 1) && tile < tileEnd) {
    tilesStep<Decoder, 1, Groups, Storage>(a, rows, b, bias, out, tile);  // multi-tile steps start at a pair (FGMP slot groups)
    tile++;
  }
  if (a.rows < kRowsPerStep) {
    // Few rows (decode): four tiles at a time keep four independent accumulator chains per row; 2
    // rows take one step over the four tiles, 3 rows (too many chains for four) one over two tiles
    // at a time — the nibbles decoded once for all the rows.
    auto scalesAt = [&](int64_t t) { return Storage == ScaleStorage::Float32 ? b.scales.data() + t * b.units * kTileColumns : nullptr; };
    for (; tile + 4 <= tileEnd; tile += 4) {
      if (a.rows == 2) {
        rowsStep<Decoder, 2, 4, Groups, Storage>(a, rows, b, scalesAt(tile), bias, out, tile, 0);
      } else if (a.rows == 3) {
        rowsStep<Decoder, 3, 2, Groups, Storage>(a, rows, b, scalesAt(tile), bias, out, tile, 0);
        rowsStep<Decoder, 3, 2, Groups, Storage>(a, rows, b, scalesAt(tile + 2), bias, out, tile + 2, 0);
      } else {
        for (int64_t m = 0; m < a.rows; m++) rowsStep<Decoder, 1, 4, Groups, Storage>(a, rows, b, scalesAt(tile), bias, out, tile, m);
      }
    }
  } else {
    for (; tile + 2 <= tileEnd; tile += 2) tilesStep<Decoder, 2, Groups, Storage>(a, rows, b, bias, out, tile);
  }
  for (; tile < tileEnd; tile++) tilesStep<Decoder, 1, Groups, Storage>(a, rows, b, bias, out, tile);
}

// The kernel over tiles [tileBegin, tileEnd), E2M1 nibbles decoded by Decoder.
template <class Decoder>
void matmulFp4Int8Avx512With(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                             int64_t tileBegin, int64_t tileEnd) {
  // The unit (16 for NVFP4/FGMP, 32 for MX) as a compile-time trip count lets the compiler keep
  // every partial sum in registers and unroll the unit fully.
  // The compact scale storages come with their formats: Half with NVFP4 (unit 16), E8m0 with MXFP4.
  constexpr ScaleStorage F32 = ScaleStorage::Float32;
  if (b.scaleStorage != F32 && !((b.unit == 16 && b.scaleStorage == ScaleStorage::Half) || (b.unit == 32 && b.scaleStorage == ScaleStorage::E8m0))) {
    matmulFp4Int8Scalar(a, b, bias, out, tileBegin, tileEnd);  // no such pairing is made
    return;
  }
  static thread_local RowBlocks kept;  // kept between calls: a fresh buffer costs a page fault per 4 KiB
  const RowBlocks& rows = rowBlocksFor(a, kAvx512Fp4StartFactor, b.hasFp8 ? kFp8Bias : 0, avx512Fp4LayoutRows(a.rows), kept);
  if (b.unit == 16 && b.scaleStorage == ScaleStorage::Half) matmulTiles<Decoder, 2, ScaleStorage::Half>(a, rows, b, bias, out, tileBegin, tileEnd);
  else if (b.unit == 32 && b.scaleStorage == ScaleStorage::E8m0) matmulTiles<Decoder, 4, ScaleStorage::E8m0>(a, rows, b, bias, out, tileBegin, tileEnd);
  else if (b.unit == 16) matmulTiles<Decoder, 2, F32>(a, rows, b, bias, out, tileBegin, tileEnd);
  else if (b.unit == 32) matmulTiles<Decoder, 4, F32>(a, rows, b, bias, out, tileBegin, tileEnd);
  else matmulTiles<Decoder, 0, F32>(a, rows, b, bias, out, tileBegin, tileEnd);
}

}  // namespace
}  // namespace fp4kit
