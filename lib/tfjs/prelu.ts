// PReLU with tfjs's full broadcasting: out = x < 0 ? alpha · x : x, alpha broadcast against x by
// numpy rules. The wasm base's Prelu indexes alpha modulo its size, which is right only when alpha
// is a trailing block of x's shape (an NHWC channel vector), so fused kernels use this otherwise.

export function isTrailingBroadcast(alphaShape: number[], xShape: number[]): boolean {
  let start = 0;
  while (start < alphaShape.length && alphaShape[start] === 1) start++;
  const tail = alphaShape.slice(start);
  const xTail = xShape.slice(xShape.length - tail.length);
  return tail.length <= xShape.length && tail.every((d, i) => d === xTail[i]);
}

/** PReLU of x (float32, shape xShape) with alpha of shape alphaShape (broadcast to xShape). */
export function preluValues(x: Float32Array, xShape: number[], alpha: Float32Array, alphaShape: number[]): Float32Array {
  const rank = xShape.length;
  if (alphaShape.length > rank) throw new RangeError(`prelu: alpha of shape [${alphaShape}] does not broadcast to [${xShape}]`);
  // alpha's stride along each axis of x (0 where alpha is broadcast).
  const aligned = [...Array(rank - alphaShape.length).fill(1), ...alphaShape];
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    if (aligned[d] !== 1 && aligned[d] !== xShape[d]) throw new RangeError(`prelu: alpha of shape [${alphaShape}] does not broadcast to [${xShape}]`);
    strides[d] = aligned[d] === 1 ? 0 : s;
    s *= aligned[d];
  }
  const out = new Float32Array(x.length);
  const index = new Array<number>(rank).fill(0);
  let a = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    out[i] = v < 0 ? alpha[a] * v : v;
    // Advance the multi-index and alpha's offset with it.
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      a += strides[d];
      if (index[d] < xShape[d]) break;
      a -= strides[d] * index[d];
      index[d] = 0;
    }
  }
  return out;
}
