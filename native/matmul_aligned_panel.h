// The body of fillAlignedPanelWith (matmul_aligned.h), included there inside namespace fp4kit: the B
// panel of the aligned kernels, a template so each ISA file inlines its own row-unit alignment.
#pragma once

// The panel sized for `units` units of `width` columns, its per-unit bounds at their starting
// values. Every per-lane entry is written by the fill, padding columns included: resize, no
// clearing pass. Static, like the fill: ISA files with different flags include this header, and the
// linker would keep one copy of an inline function for all of them.
static inline void preparePanel(AlignedPanel& p, int64_t units, int64_t unit, int64_t width) {
  p.pairs.resize(static_cast<size_t>(units * (unit / 2) * width));
  p.exps.resize(static_cast<size_t>(units * width));
  p.spans.resize(static_cast<size_t>(units * width));
  p.scales.resize(static_cast<size_t>(units * width));
  p.laneFactors.resize(static_cast<size_t>(units * width));
  p.maxSpan.assign(static_cast<size_t>(units), 0);
  p.minExp.assign(static_cast<size_t>(units), INT32_MAX / 2);
  p.maxExp.assign(static_cast<size_t>(units), INT32_MIN / 2);
  p.powerUnit.assign(static_cast<size_t>(units), 1);
  p.minScaleExp.assign(static_cast<size_t>(units), INT32_MAX / 2);
  p.maxScaleExp.assign(static_cast<size_t>(units), INT32_MIN / 2);
}

template <class Align>
static void fillAlignedPanelWith(const DecodedOperand& b, int64_t unit, int64_t col0, int64_t cols, int64_t width, AlignedPanel& p,
                                 Align&& align) {
  const int64_t units = (b.cols + unit - 1) / unit, pairs = unit / 2;
  preparePanel(p, units, unit, width);
  std::vector<int16_t> ints(static_cast<size_t>(unit));
  // Units in chunks of 256 k, every column within a chunk: the chunk's panel (16 KiB) stays in L1
  // while its 32 columns' strided stores land (column after column over all of K would bring each
  // line back from L2 once per column).
  const int64_t chunkUnits = std::max<int64_t>(1, 256 / unit);
  for (int64_t j0 = 0; j0 < units; j0 += chunkUnits) {
    const int64_t j1 = std::min(units, j0 + chunkUnits);
    for (int64_t c = 0; c < width; c++) {
      const int64_t col = col0 + c;
      for (int64_t j = j0; j < j1; j++) {
        const size_t at = static_cast<size_t>(j * width + c), u = static_cast<size_t>(j);
        int32_t* dst = p.pairs.data() + j * pairs * width + c;
        if (c >= cols) {  // padding: zero integers, span 0, no factor
          p.spans[at] = p.exps[at] = 0;
          p.scales[at] = p.laneFactors[at] = 0.0f;
          for (int64_t q = 0; q < pairs; q++) dst[q * width] = 0;
          continue;
        }
        int32_t e = 0;
        const int32_t span = align(b.values + col * b.paddedCols + j * unit, unit, ints.data(), e);
        p.spans[at] = span;
        p.exps[at] = e;
        p.scales[at] = b.blockScales[col * b.blocksPerRow + (j * unit) / b.blockSize];
        p.maxSpan[u] = std::max(p.maxSpan[u], span);
        p.minExp[u] = std::min(p.minExp[u], e);
        p.maxExp[u] = std::max(p.maxExp[u], e);
        const int32_t y = powerOfTwoExponent(p.scales[at]);
        p.laneFactors[at] = 0.0f;
        if (y == INT32_MIN || e + y < -126 || e + y > 96) {
          p.powerUnit[u] = 0;
        } else {
          p.laneFactors[at] = powerOfTwo(e + y);
          p.minScaleExp[u] = std::min(p.minScaleExp[u], y);
          p.maxScaleExp[u] = std::max(p.maxScaleExp[u], y);
        }
        // Consecutive int16 are packPair's pairs in memory order (see alignRows).
        for (int64_t q = 0; q < pairs; q++) {
          int32_t pair = 0;
          if (span != kUnaligned) std::memcpy(&pair, ints.data() + 2 * q, 4);
          dst[q * width] = pair;
        }
      }
    }
  }
}
