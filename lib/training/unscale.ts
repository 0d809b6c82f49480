// The last step of fp4Dense's quantized products (fp4-product.ts, fp8-product.ts): an exact or
// kernel-rounded sum over quantized codes, divided by the row operand's scale and then by the
// column operand's, each division rounded to float32 (the order the released code's float32
// simulation gives, kept so results do not move). Where the first quotient leaves float32's normal
// range — it overflows (|x| ≳ 1e34 activations against small weights: −Inf or NaN where the
// product itself fits) or falls into the subnormals (losing bits the second division would
// restore) — both divisions run in float64 and the result is rounded once.

const FLOAT32_MAX = 3.4028234663852886e38;
const FLOAT32_MIN_NORMAL = 2 ** -126;

/** sum / rowScale / colScale as float32 (scales finite and positive). */
export function unscale(sum: number, rowScale: number, colScale: number): number {
  const first = Math.fround(sum / rowScale);
  const size = Math.abs(first);
  if (size <= FLOAT32_MAX && (size >= FLOAT32_MIN_NORMAL || sum === 0)) return Math.fround(first / colScale);
  return Math.fround(sum / rowScale / colScale);
}
