// When the WebAssembly backend runs a decoded-operand product on its aligned int16 kernel
// (assembly/matmul-aligned.ts) rather than the float64 loop (assembly/matmul-decoded.ts): the same
// bits either way, so this only decides speed. A lane whose pair of row-units falls outside the
// exactness rule costs a scalar float64 sum (~40× an integer lane), so the integer path pays only
// when few do — the addon's rule (native/matmul_aligned.cc planAligned): at most 5 % expected.

/** Spans of row-units as the aligned kernels write them (> 15: no int16 form). */
const MAX_SPAN = 15;
export const ALIGNED_MAX_FALLBACK = 0.05;
/** Below this many rows of a, aligning b costs about what the product does. */
export const ALIGNED_MIN_ROWS = 8;

function spanCounts(spans: Int32Array): Float64Array {
  const h = new Float64Array(MAX_SPAN + 2);
  for (let i = 0; i < spans.length; i++) h[spans[i] > MAX_SPAN ? MAX_SPAN + 1 : spans[i]] += 1;
  return h;
}

/** The share of (row-unit of a, row-unit of b) pairs outside the rule's spans
 *  (spanA + spanB + log2(unit) ≤ 31, both with an int16 form). */
export function alignedFallbackShare(aSpans: Int32Array, bSpans: Int32Array, unit: number): number {
  if (aSpans.length === 0 || bSpans.length === 0) return 1;
  const ha = spanCounts(aSpans), hb = spanCounts(bSpans);
  const sumBits = 31 - (unit <= 16 ? 4 : 5);
  let fail = 0;
  for (let sa = 0; sa <= MAX_SPAN + 1; sa++)
    for (let sb = 0; sb <= MAX_SPAN + 1; sb++) if (sa > MAX_SPAN || sb > MAX_SPAN || sa + sb > sumBits) fail += ha[sa] * hb[sb];
  return fail / (aSpans.length * bSpans.length);
}
