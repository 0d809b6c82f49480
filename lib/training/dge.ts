// DGE, the Differentiable Gradient Estimator of FP4 LLM training (Wang et al., arXiv 2501.17116,
// Eq. 7–8; ../shared/design/papers-training.md §2.3): the weight gradient through the hard E2M1
// quantizer is multiplied elementwise by the derivative of a smooth surrogate of the step on
// each quantization interval [l, r) of the scaled weight u = w·γ (δ = r − l):
//   f′(u) = (1/k) · |2(u − l)/δ − 1|^(1/k − 1),  capped at `cap`
// (k = 5, cap = 3 in the paper; 1/k at grid points, the cap at interval midpoints). Intervals as in
// the released kernel: [−6,−4) … [4, 6]; u < −6 uses the first interval and u > 6 gives 0.

export interface DgeOptions {
  k: number;
  cap: number;
}

export const DGE_DEFAULTS: DgeOptions = { k: 5, cap: 3 };

const EDGES = [-6, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6] as const;

/** f′(u) for one scaled weight. */
export function dgeFactor(u: number, o: DgeOptions = DGE_DEFAULTS): number {
  if (Number.isNaN(u) || u > 6) return 0;
  let i = 0;
  while (i < EDGES.length - 2 && u >= EDGES[i + 1]) i++;
  const l = EDGES[i];
  const delta = EDGES[i + 1] - l;
  const t = Math.abs((2 * (u - l)) / delta - 1);
  return Math.min((1 / o.k) * t ** (1 / o.k - 1), o.cap);
}

/** f′ of every scaled weight (float32). */
export function dgeFactors(scaled: Float32Array, o: DgeOptions = DGE_DEFAULTS): Float32Array {
  const out = new Float32Array(scaled.length);
  for (let i = 0; i < scaled.length; i++) out[i] = dgeFactor(scaled[i], o);
  return out;
}
