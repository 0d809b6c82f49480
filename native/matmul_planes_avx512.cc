// Byte-plane weights × MXINT8 activations with AVX-512 VNNI (matmul_planes.h): the same integer dot
// products (modulo 2^32) and float32 steps, lane by lane, as matmulPlanesScalar. Each of the 16
// lanes of a vector is one output column; P planes × Rows rows × Tiles tiles independent vpdpbusd
// chains per unit, the low plane where a group of 4 k has one, then the FP4 path's epilogue
// (matmul_avx512_shared.h).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "matmul_avx512_shared.h"
#include "matmul_planes.h"

namespace fp4kit {
namespace {

// Where a step reads its tiles' bytes: the step's first tile's planes ([kQuads][P][64] per tile,
// tiles one after another) and low plane ([kQuads][64] per tile) from group of 4 k `quadBase` on —
// the packed weights' own, or a stretch of one tile rebuilt from its codes
// (matmul_planes_avx512_vbmi.cc) — and the units it covers, [unitBegin, unitEnd): the accumulators
// start from `out` after the first unit and take the bias at the last (the same floats in the same
// order as one pass).
struct PlaneSource {
  const uint8_t* planes;
  const uint8_t* low;
  int64_t quadBase, quadsPerTile, unitBegin, unitEnd;
  // Bytes to bring into L2 during this step, one 64-byte line per group of 4 k it covers (the next
  // stretch's codes, which the from-codes kernel rebuilds next), so memory works while the dot
  // products run. nullptr: none.
  const uint8_t* prefetch = nullptr;
  // The lane multipliers as floats, [tile][unit][16] from the step's first tile and unit 0, or
  // nullptr: decoded from the weights' bytes in the step (loadPlaneLaneScales).
  const float* scales = nullptr;
};

// The lane multipliers of tiles [tile0, tile0 + tiles), units [unitBegin, unitEnd), as floats for
// steps of many rows: the weights' own, or byte multipliers decoded once into a per-thread buffer
// (decoding them in every row step cost ~10 % at 512 rows).
inline const float* floatLaneScales(const PackedPlaneWeights& b, int64_t tile0, int64_t tiles, int64_t unitBegin, int64_t unitEnd) {
  if (b.scaleStorage == ScaleStorage::Float32) return b.scales.data() + tile0 * b.units * kTileColumns;
  return laneScalesAsFloats(tiles, b.units, unitBegin, unitEnd, [&](int64_t t, int64_t j) { return loadPlaneLaneScales(b, (tile0 + t) * b.units + j); });
}

// Tiles [tile0, tile0 + tiles) of the weights' own planes; `scales`: their float multipliers (or
// nullptr, see PlaneSource).
inline PlaneSource packedPlanes(const PackedPlaneWeights& b, int64_t tile0, const float* scales = nullptr) {
  const size_t tileBytes = static_cast<size_t>(b.kQuads * 64);
  return {b.planes.data() + tile0 * tileBytes * b.planeCount, b.low.empty() ? nullptr : b.low.data() + tile0 * tileBytes, 0, b.kQuads, 0, b.units,
          nullptr, scales};
}

// Rows [m0, m0 + Rows) (a block of `rows`, layoutRowBlocks) against tiles [tile0, tile0 + Tiles).
template <int P, int Quads, int Rows, int Tiles, bool Split, bool FastScales>
void step(const RowBlocks& rows, const PackedPlaneWeights& b, PlaneSource src, const float* bias, float* out, int64_t tile0, int64_t m0) {
  const __m512 unitScale = _mm512_set1_ps(std::ldexp(1.0f, -b.unitShift()));
  __m512 acc[Rows][Tiles];
  for (int t = 0; t < Tiles; t++) {
    const int64_t col0 = (tile0 + t) * kTileColumns;
    const __mmask16 valid = static_cast<__mmask16>((1u << std::clamp<int64_t>(b.n - col0, 0, kTileColumns)) - 1);
    for (int r = 0; r < Rows; r++) acc[r][t] = src.unitBegin == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(valid, out + (m0 + r) * b.n + col0);
  }
  // This block's rows, each array read through one pointer (q·Rows + r within a unit).
  const int32_t* codes = rows.codes.data() + m0 * rows.quads + src.unitBegin * Quads * Rows;
  const int32_t* starts = rows.starts.data() + m0 * rows.units + src.unitBegin * Rows;
  const int32_t* shifts = rows.shifts.data() + m0 * rows.blocks;
  const float* scales = rows.scales.data() + m0 * rows.blocks;
  for (int64_t j = src.unitBegin; j < src.unitEnd; j++, codes += Quads * Rows, starts += Rows) {
    __m512i dot[Rows][Tiles][P];
    for (int r = 0; r < Rows; r++)
      for (int t = 0; t < Tiles; t++) {
        dot[r][t][0] = _mm512_set1_epi32(starts[r]);
        for (int p = 1; p < P; p++) dot[r][t][p] = _mm512_setzero_si512();
      }
    for (int q = 0; q < Quads; q++) {
      const int64_t at = j * Quads + q - src.quadBase;  // this group's index in src
      if (src.prefetch) _mm_prefetch(reinterpret_cast<const char*>(src.prefetch + at * 64), _MM_HINT_T1);
      __m512i w[Tiles][P];
      for (int t = 0; t < Tiles; t++)
        for (int p = 0; p < P; p++)
          w[t][p] = _mm512_loadu_si512(src.planes + ((t * src.quadsPerTile + at) * P + p) * 64);
      for (int r = 0; r < Rows; r++) {
        const __m512i av = _mm512_set1_epi32(codes[q * Rows + r]);
        for (int t = 0; t < Tiles; t++)
          for (int p = 0; p < P; p++) dot[r][t][p] = _mm512_dpbusd_epi32(dot[r][t][p], w[t][p], av);
      }
    }
    __m512i d[Rows][Tiles];
    for (int r = 0; r < Rows; r++)
      for (int t = 0; t < Tiles; t++) d[r][t] = Split ? combineShiftedPlanes<P>(dot[r][t], b.lowShift) : combinePlanes<P>(dot[r][t]);
    if (Split) {
      // The low bits' dot, only over the groups of 4 k that have any (matmul_planes.h).
      for (int t = 0; t < Tiles; t++) {
        for (unsigned mask = b.lowQuadMask(tile0 + t, j); mask != 0; mask &= mask - 1) {
          const int q = __builtin_ctz(mask);
          const __m512i w = _mm512_loadu_si512(src.low + (t * src.quadsPerTile + j * Quads + q - src.quadBase) * 64);
          for (int r = 0; r < Rows; r++) d[r][t] = _mm512_dpbusd_epi32(d[r][t], w, _mm512_set1_epi32(codes[q * Rows + r]));
        }
      }
    }
    const int64_t aBlock = (j * 4 * Quads) / 32;
    for (int t = 0; t < Tiles; t++) {
      const __m512 sb = src.scales ? _mm512_loadu_ps(src.scales + (t * b.units + j) * kTileColumns) : loadPlaneLaneScales(b, (tile0 + t) * b.units + j);
      for (int r = 0; r < Rows; r++)
        acc[r][t] = addUnitWith<FastScales>(acc[r][t], d[r][t], sb, shifts[aBlock * Rows + r], scales[aBlock * Rows + r], unitScale);
    }
  }
  storeTiles<Rows, Tiles>(acc, src.unitEnd == b.units ? bias : nullptr, out, b.n, tile0, m0);
}

template <int P, int Quads, int Rows, int Tiles>
void rowsStep(const Int8Activations& a, const RowBlocks& rows, const PackedPlaneWeights& b, PlaneSource src, const float* bias, float* out,
              int64_t tile0, int64_t m0) {
  const bool fast = rowsTakeFastScales<Rows>(a, m0);
  if (b.lowShift > 0) {
    if (fast) step<P, Quads, Rows, Tiles, true, true>(rows, b, src, bias, out, tile0, m0);
    else step<P, Quads, Rows, Tiles, true, false>(rows, b, src, bias, out, tile0, m0);
  } else {
    if (fast) step<P, Quads, Rows, Tiles, false, true>(rows, b, src, bias, out, tile0, m0);
    else step<P, Quads, Rows, Tiles, false, false>(rows, b, src, bias, out, tile0, m0);
  }
}

template <int P, int Quads>
constexpr int kStepRows = static_cast<int>(planesStepRows(P, 4 * Quads));

// The rows [m, a.rows) past the last whole step (rest < kStepRows of them): one step of them all
// after a whole step, else one row at a time (RowBlocks' layout, matmul.h).
template <int P, int Quads, int Tiles, int R = kStepRows<P, Quads> - 1>
void restRows(const Int8Activations& a, const RowBlocks& rows, const PackedPlaneWeights& b, PlaneSource src, const float* bias, float* out,
              int64_t tile, int64_t m) {
  if constexpr (R > 1) {
    if (m > 0 && a.rows - m == R) return rowsStep<P, Quads, R, Tiles>(a, rows, b, src, bias, out, tile, m);
    restRows<P, Quads, Tiles, R - 1>(a, rows, b, src, bias, out, tile, m);
  } else {
    for (; m < a.rows; m++) rowsStep<P, Quads, 1, Tiles>(a, rows, b, src, bias, out, tile, m);
  }
}

// Every row of one tile whose bytes come from `src`: steps of kStepRows rows, then the rest.
template <int P, int Quads>
void oneTile(const Int8Activations& a, const RowBlocks& rows, const PackedPlaneWeights& b, PlaneSource src, const float* bias, float* out,
             int64_t tile) {
  // Only the first step prefetches.
  PlaneSource rest = src;
  rest.prefetch = nullptr;
  int64_t m = 0;
  for (; m + kStepRows<P, Quads> <= a.rows; m += kStepRows<P, Quads>) rowsStep<P, Quads, kStepRows<P, Quads>, 1>(a, rows, b, m ? rest : src, bias, out, tile, m);
  if (m < a.rows) restRows<P, Quads, 1>(a, rows, b, m ? rest : src, bias, out, tile, m);
}

// Tiles per step that keep Rows × Tiles × P dot chains, the weights and the float accumulators
// within the 32 vector registers; a product with fewer than 4 rows (decode) runs one row over 4
// tiles for enough independent chains.
template <int P, int Quads>
void tiles(const Int8Activations& a, const RowBlocks& rows, const PackedPlaneWeights& b, const float* bias, float* out, int64_t tileBegin,
           int64_t tileEnd) {
  constexpr int kRows = kStepRows<P, Quads>;
  constexpr int kTiles = P == 1 ? 2 : 1;
  int64_t tile = tileBegin;
  if (a.rows < kRows) {
    for (; tile + 4 <= tileEnd; tile += 4)
      for (int64_t m = 0; m < a.rows; m++) rowsStep<P, Quads, 1, 4>(a, rows, b, packedPlanes(b, tile), bias, out, tile, m);
  } else {
    for (; tile + kTiles <= tileEnd; tile += kTiles) {
      const PlaneSource src = packedPlanes(b, tile, floatLaneScales(b, tile, kTiles, 0, b.units));
      int64_t m = 0;
      for (; m + kRows <= a.rows; m += kRows) rowsStep<P, Quads, kRows, kTiles>(a, rows, b, src, bias, out, tile, m);
      if (m < a.rows) restRows<P, Quads, kTiles>(a, rows, b, src, bias, out, tile, m);
    }
  }
  for (; tile < tileEnd; tile++) oneTile<P, Quads>(a, rows, b, packedPlanes(b, tile, floatLaneScales(b, tile, 1, 0, b.units)), bias, out, tile);
}

// Calls f with the weights' plane count P and groups of 4 k per unit Quads as compile-time
// constants (std::integral_constant): the one place the kernels' template shapes are chosen.
template <class F>
void withPlaneShape(const PackedPlaneWeights& b, F&& f) {
  using One = std::integral_constant<int, 1>;
  using Two = std::integral_constant<int, 2>;
  using Unit16 = std::integral_constant<int, 4>;
  using Unit32 = std::integral_constant<int, 8>;
  if (b.unit == 16) {
    if (b.planeCount == 1) f(One{}, Unit16{});
    else f(Two{}, Unit16{});
  } else {
    if (b.planeCount == 1) f(One{}, Unit32{});
    else f(Two{}, Unit32{});
  }
}

}  // namespace

void matmulPlanesAvx512(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out,
                        int64_t tileBegin, int64_t tileEnd) {
  static thread_local RowBlocks kept;  // kept between calls: a fresh buffer costs a page fault per 4 KiB
  const RowBlocks& rows = rowBlocksFor(a, b.offset(), 0, matmulPlanesStepRows(b), kept);
  withPlaneShape(b, [&](auto p, auto quads) { tiles<p(), quads()>(a, rows, b, bias, out, tileBegin, tileEnd); });
}

void matmulPlanesTileAvx512(const Int8Activations& a, const RowBlocks& rows, const PackedPlaneWeights& b, const uint8_t* planes,
                            const uint8_t* low, int64_t unitBegin, int64_t unitEnd, const uint8_t* prefetch, const float* bias, float* out,
                            int64_t tile) {
  const int64_t quadBase = unitBegin * b.unit / 4, quads = (unitEnd - unitBegin) * b.unit / 4;
  const PlaneSource src{planes, low, quadBase, quads, unitBegin, unitEnd, prefetch, floatLaneScales(b, tile, 1, unitBegin, unitEnd)};
  withPlaneShape(b, [&](auto p, auto q) { oneTile<p(), q()>(a, rows, b, src, bias, out, tile); });
}

}  // namespace fp4kit
