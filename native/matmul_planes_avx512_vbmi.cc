// Split (E4M3) weights in the codes form × MXINT8 activations, with AVX-512 VNNI + VBMI
// (matmul_planes.h): the two planes of h and, in the groups of 4 k that have any, the low bits are
// rebuilt from the one-byte codes — per plane two vpermi2b lookups (codes 0–127 and 128–255, four
// table registers) and a blend on the code's top bit — so the weights take one byte per element
// instead of three and a product reads one. Below 4 rows every step rebuilds them in registers
// (one row: planes of |v|, one lookup each, the weights' signs moved onto the activation);
// from 4 rows on each tile (a stretch of it past K = 4096) is rebuilt once into a per-thread
// buffer that matmulPlanesAvx512's row steps then read. Everything after the lookups is
// matmulPlanesAvx512's arithmetic: the same dot products modulo 2^32 and the same epilogue, so the
// same bits as matmulPlanesScalar.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "matmul_avx512_shared.h"
#include "matmul_planes.h"

namespace fp4kit {
namespace {

// Split weights have two planes of h (matmul_planes.h: h fits 16 signed bits), and the low plane.
constexpr int P = 2;
// From this many rows on, each tile is rebuilt once into a buffer for all rows; below, every step
// rebuilds its planes in registers (3 rows per step: the table registers leave no room for more).
// E4M3, one thread, K = N = 4096, best of 15–25 in one process, registers against buffer: 8 rows
// 145 against 191 GFLOP/s, 10 rows 141 / 162, 11 rows 120 / 145; since the rows past the last
// whole step of the buffer's steps run as one step, 4 rows 115 / 119, 5 rows 97 / 112, 6 rows
// 117 / 129, 7 rows 112 / 133.
constexpr int64_t kPlanesFromCodesMaxRows = 4;
// One-row steps prefetch each tile's codes this many groups of 4 k (64 bytes each) ahead, as the FP4
// kernel does its nibbles (matmul_avx512_kernel.h).
constexpr int64_t kPrefetchQuads = 32;
// Steps of up to this many rows move the weights' signs onto the activations (rowsStep).
constexpr int kFoldMaxRows = 3;

struct PlaneTables {
  __m512i t[P + 1][4];  // plane p (p = P: the low bits), codes 64·i … 64·i + 63
  __m512i magnitude[P + 1][2];  // the same of |v| by the code's low 7 bits (signMagnitude weights)
  explicit PlaneTables(const PackedPlaneWeights& b) {
    for (int p = 0; p <= P; p++) {
      for (int i = 0; i < 4; i++) t[p][i] = _mm512_loadu_si512(b.planeOfCode[p] + 64 * i);
      for (int i = 0; i < 2; i++) magnitude[p][i] = _mm512_loadu_si512(b.magnitudePlaneOfCode[p] + 64 * i);
    }
  }
  // Plane p's bytes for 64 codes (their top bits in `high`).
  __m512i plane(int p, __m512i codes, __mmask64 high) const {
    const __m512i low = _mm512_permutex2var_epi8(t[p][0], codes, t[p][1]);
    const __m512i top = _mm512_permutex2var_epi8(t[p][2], codes, t[p][3]);
    return _mm512_mask_blend_epi8(high, low, top);
  }
  // Plane p's bytes of |v| for 64 codes: one lookup (vpermi2b reads the index's low 7 bits).
  __m512i magnitudePlane(int p, __m512i codes) const { return _mm512_permutex2var_epi8(magnitude[p][0], codes, magnitude[p][1]); }
};

// Four activation codes broadcast, negated in the bytes whose weight is negative (`negative`, one
// bit per byte): with the weights' magnitudes, the same products. No code is −128 (the caller checks).
inline __m512i signedActivations(int32_t four, __mmask64 negative) {
  const __m512i av = _mm512_set1_epi32(four);
  return _mm512_mask_sub_epi8(av, negative, _mm512_setzero_si512(), av);
}

// Rows [m0, m0 + Rows) against tiles [tile0, tile0 + Tiles): each tile's planes rebuilt once per
// 4 k and used for every row. SignFold (sign-magnitude weights, no activation code −128): planes of
// |v| from one lookup each, the weights' signs applied to the activations (one masked subtract per
// row instead of a second lookup and a blend per plane; the chains then start at 0: no offset).
// Not inlined: each instantiation gets its own register allocation (inlined into one function with
// the 2–3-row steps, the one-row step ran 6–13 % slower).
template <int Rows, int Tiles, bool FastScales, bool SignFold>
__attribute__((noinline)) void step(const Int8Activations& a, const PackedPlaneWeights& b, const PlaneTables& tables, const float* bias, float* out,
          int64_t tile0, int64_t m0) {
  const __m512 unitScale = _mm512_set1_ps(std::ldexp(1.0f, -b.unitShift()));
  const int quads = static_cast<int>(b.unit / 4);
  const int64_t stride = a.paddedK, tileBytes = b.kQuads * 64;
  const uint8_t* const codes0 = b.codes.data() + tile0 * tileBytes;
  __m512 acc[Rows][Tiles];
  for (int r = 0; r < Rows; r++)
    for (int t = 0; t < Tiles; t++) acc[r][t] = _mm512_setzero_ps();
  for (int64_t j = 0; j < b.units; j++) {
    // Tile (tile0 + t)'s codes of this unit, group q at cUnit + t·tileBytes + q·64; row m0 + r's codes at aUnit + r·stride.
    const uint8_t* cUnit = codes0 + j * (quads * 64);
    const int8_t* aUnit = a.codes + m0 * stride + j * b.unit;
    __m512i dot[Rows][Tiles][P];
    for (int r = 0; r < Rows; r++)
      for (int t = 0; t < Tiles; t++) {
        if (SignFold)
          for (int p = 0; p < P; p++) dot[r][t][p] = _mm512_setzero_si512();
        else
          startPlaneChains<P>(dot[r][t], b.offset(), a.unitSums[static_cast<size_t>((m0 + r) * a.units + j)]);
      }
    // A loop, not unrolled over the unit's groups (unrolled, GCC hoisted the one-row step's loads
    // ahead of the products and spilled them: one row 3–5 % slower, 2–3 rows no faster). The
    // one-row prefetch stays after its tile's load: issued for all tiles at the top of the group,
    // GCC stored every dot chain to the stack in each group (one row 77 → 53 GFLOP/s).
    for (int q = 0; q < quads; q++) {
      __m512i av[Rows];  // without SignFold, shared by the tiles
      if (!SignFold)
        for (int r = 0; r < Rows; r++) av[r] = _mm512_set1_epi32(load4(aUnit + r * stride + 4 * q));
      for (int t = 0; t < Tiles; t++) {
        const __m512i codes = _mm512_loadu_si512(cUnit + t * tileBytes + q * 64);
        if (Rows == 1) prefetchAt(cUnit, t * tileBytes + (q + kPrefetchQuads) * 64);
        const __mmask64 high = _mm512_movepi8_mask(codes);
        __m512i sv[Rows];
        for (int r = 0; r < Rows; r++) sv[r] = SignFold ? signedActivations(load4(aUnit + r * stride + 4 * q), high) : av[r];
        for (int p = 0; p < P; p++) {
          const __m512i plane = SignFold ? tables.magnitudePlane(p, codes) : tables.plane(p, codes, high);
          for (int r = 0; r < Rows; r++) dot[r][t][p] = _mm512_dpbusd_epi32(dot[r][t][p], plane, sv[r]);
        }
      }
    }
    __m512i d[Rows][Tiles];
    for (int r = 0; r < Rows; r++)
      for (int t = 0; t < Tiles; t++) d[r][t] = combineShiftedPlanes<P>(dot[r][t], b.lowShift);
    // Unrolled over the tiles so that d[r][t] stays in registers: left a loop (it holds a loop), GCC
    // kept d on the stack across every unit (one row, K = N = 4096, best of 15 in one process:
    // E4M3 90 → 104 GFLOP/s, FGMP 75 → 91).
#pragma GCC unroll 4
    for (int t = 0; t < Tiles; t++) {
      for (unsigned mask = b.lowQuadMask(tile0 + t, j); mask != 0; mask &= mask - 1) {
        const int q = __builtin_ctz(mask);
        const __m512i codes = _mm512_loadu_si512(cUnit + t * tileBytes + q * 64);
        const __mmask64 high = _mm512_movepi8_mask(codes);
        const __m512i low = SignFold ? tables.magnitudePlane(P, codes) : tables.plane(P, codes, high);
        for (int r = 0; r < Rows; r++) {
          const int32_t four = load4(aUnit + r * stride + 4 * q);
          d[r][t] = _mm512_dpbusd_epi32(d[r][t], low, SignFold ? signedActivations(four, high) : _mm512_set1_epi32(four));
        }
      }
    }
    const int64_t aBlock = (j * b.unit) / 32;
    for (int t = 0; t < Tiles; t++) {
      const __m512 sb = loadPlaneLaneScales(b, (tile0 + t) * b.units + j);
      if (Rows == 1) prefetchPlaneLaneScales(b, (tile0 + t) * b.units + j);
      for (int r = 0; r < Rows; r++) acc[r][t] = addUnit<FastScales>(acc[r][t], d[r][t], sb, a, m0 + r, aBlock, unitScale);
    }
  }
  storeTiles<Rows, Tiles>(acc, bias, out, b.n, tile0, m0);
}

// Up to 3 rows fold the weights' signs into their activations where they may (`fold`: signMagnitude
// weights, no activation code −128): one subtract per row instead of a second lookup and a blend per
// plane, and 6 table registers instead of 12 (one thread, 4096², best of 15–20 in one process, with
// the tile pairs below: 2 rows E4M3 93–109 → 119–126 GFLOP/s, FGMP 76–81 → 104–113; 3 rows
// E4M3 136 → 150, FGMP 110 → 126). That is every step here: from 4 rows the rebuilt tiles run.
template <int Rows, int Tiles>
void rowsStep(const Int8Activations& a, const PackedPlaneWeights& b, const PlaneTables& tables, bool fold, const float* bias, float* out,
              int64_t tile0, int64_t m0) {
  const bool fast = rowsTakeFastScales<Rows>(a, m0);
  if (fold && Rows <= kFoldMaxRows) {
    if (fast) step<Rows, Tiles, true, true>(a, b, tables, bias, out, tile0, m0);
    else step<Rows, Tiles, false, true>(a, b, tables, bias, out, tile0, m0);
  } else {
    if (fast) step<Rows, Tiles, true, false>(a, b, tables, bias, out, tile0, m0);
    else step<Rows, Tiles, false, false>(a, b, tables, bias, out, tile0, m0);
  }
}

// Tiles [tile, tile + Tiles) for every row: steps of 3 rows (the 12 table registers leave room for
// 3 × 2 dot chains and their sums), then the rest.
template <int Tiles>
void allRows(const Int8Activations& a, const PackedPlaneWeights& b, const PlaneTables& tables, bool fold, const float* bias, float* out,
             int64_t tile) {
  int64_t m = 0;
  for (; m + 3 <= a.rows; m += 3) rowsStep<3, Tiles>(a, b, tables, fold, bias, out, tile, m);
  if (a.rows - m == 2) rowsStep<2, Tiles>(a, b, tables, fold, bias, out, tile, m);
  else if (a.rows - m == 1) rowsStep<1, Tiles>(a, b, tables, fold, bias, out, tile, m);
}

// A stretch of a tile's planes and low plane rebuilt from its codes, per thread and kept between
// calls: [quads][P][64] and [quads][64] for up to kStretchQuads groups of 4 k — a whole tile up to
// K = 4096 (192 KiB, in L2 while every row step reads it; stretches of 512 k read from L1 were no
// faster for E4M3 and ~10 % slower for FGMP's steps of 8 rows), longer K in stretches. The low
// plane only in the groups of 4 k that `lowQuads` marks: the kernel reads no others.
constexpr int64_t kStretchQuads = 1024;  // 4096 k
struct RebuiltStretch {
  std::vector<uint8_t> planeBytes = std::vector<uint8_t>(kStretchQuads * P * 64 + 64), lowBytes = std::vector<uint8_t>(kStretchQuads * 64 + 64);
  // 64-byte aligned views of the two buffers.
  uint8_t* planes = aligned(planeBytes);
  uint8_t* low = aligned(lowBytes);
  static uint8_t* aligned(std::vector<uint8_t>& v) {
    return v.data() + ((64 - reinterpret_cast<uintptr_t>(v.data()) % 64) % 64);
  }
};

// Units [j0, j1) of `tile` rebuilt into `planes` and `low`. Everything the loops read is a local
// first: the stores may alias any byte, and the compiler would reload members (and the thread's
// buffer address) after each one.
void rebuildStretch(const PackedPlaneWeights& b, const PlaneTables& tables, int64_t tile, int64_t j0, int64_t j1, uint8_t* planes,
                    uint8_t* low) {
  __m512i t[P + 1][4];
  for (int p = 0; p <= P; p++)
    for (int i = 0; i < 4; i++) t[p][i] = tables.t[p][i];
  auto plane = [&t](int p, __m512i codes, __mmask64 high) {
    return _mm512_mask_blend_epi8(high, _mm512_permutex2var_epi8(t[p][0], codes, t[p][1]), _mm512_permutex2var_epi8(t[p][2], codes, t[p][3]));
  };
  const int quadsPerUnit = static_cast<int>(b.unit / 4);
  const int64_t quad0 = j0 * quadsPerUnit, quads = (j1 - j0) * quadsPerUnit;
  const uint8_t* codes = b.codes.data() + (tile * b.kQuads + quad0) * 64;
  for (int64_t q = 0; q < quads; q++) {
    const __m512i c = _mm512_loadu_si512(codes + q * 64);
    const __mmask64 high = _mm512_movepi8_mask(c);
    for (int p = 0; p < P; p++) _mm512_store_si512(planes + (q * P + p) * 64, plane(p, c, high));
  }
  const uint8_t* lowQuads = b.lowQuads.data() + tile * b.units;
  for (int64_t j = j0; j < j1; j++) {
    for (unsigned mask = lowQuads[j]; mask != 0; mask &= mask - 1) {
      const int64_t q = (j - j0) * quadsPerUnit + __builtin_ctz(mask);
      const __m512i c = _mm512_loadu_si512(codes + q * 64);
      _mm512_store_si512(low + q * 64, plane(P, c, _mm512_movepi8_mask(c)));
    }
  }
}

}  // namespace

void matmulPlanesFromCodesAvx512Vbmi(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out,
                                     int64_t tileBegin, int64_t tileEnd) {
  if (b.codes.empty() || b.planeCount != P || b.lowShift == 0) {
    matmulPlanesAvx512(a, b, bias, out, tileBegin, tileEnd);  // not split weights with codes: no tables to look up
    return;
  }
  const PlaneTables tables(b);
  if (a.rows >= kPlanesFromCodesMaxRows) {
    static thread_local RebuiltStretch stretch;
    static thread_local RowBlocks keptRows;
    uint8_t* const planes = stretch.planes;
    uint8_t* const low = stretch.low;
    const RowBlocks& rows = rowBlocksFor(a, b.offset(), 0, matmulPlanesStepRows(b), keptRows);
    const int64_t unitsPerStretch = kStretchQuads * 4 / b.unit;
    for (int64_t tile = tileBegin; tile < tileEnd; tile++) {
      for (int64_t j0 = 0; j0 < b.units; j0 += unitsPerStretch) {
        const int64_t j1 = std::min(b.units, j0 + unitsPerStretch);
        rebuildStretch(b, tables, tile, j0, j1, planes, low);
        // The codes of the next stretch (in this tile or the next), brought in while this one runs.
        const int64_t nextQuad = tile * b.kQuads + j1 * b.unit / 4;
        const uint8_t* next = nextQuad < tileEnd * b.kQuads ? b.codes.data() + nextQuad * 64 : nullptr;
        matmulPlanesTileAvx512(a, rows, b, planes, low, j0, j1, next, bias, out, tile);
      }
    }
    return;
  }
  // Few rows (fewer than 4): a scan of their codes is cheap beside the product.
  const bool fold = b.signMagnitude && !std::memchr(a.codes, 0x80, static_cast<size_t>(a.rows * a.paddedK));
  int64_t tile = tileBegin;
  // One row: four tiles per step for enough independent chains (1 thread, K = N = 4096, GFLOP/s:
  // two tiles 69–72, four 89–92, eight 74).
  if (a.rows == 1) {
    for (; tile + 4 <= tileEnd; tile += 4) rowsStep<1, 4>(a, b, tables, fold, bias, out, tile, 0);
    if (tile + 2 <= tileEnd) {
      rowsStep<1, 2>(a, b, tables, fold, bias, out, tile, 0);
      tile += 2;
    }
  }
  // 2–3 rows with folded signs: two tiles per step (the freed table registers hold their chains).
  if (a.rows > 1 && fold)
    for (; tile + 2 <= tileEnd; tile += 2) allRows<2>(a, b, tables, fold, bias, out, tile);
  for (; tile < tileEnd; tile++) allRows<1>(a, b, tables, fold, bias, out, tile);
}

}  // namespace fp4kit
