// OCC, Outlier Clamping and Compensation (Wang et al., arXiv 2501.17116, Eq. 9;
// ../shared/design/papers-training.md §2.4): each activation row is clamped at its (1 − α) and α
// quantiles before quantizing, and the residual ΔA = A − clamp(A) — sparse, ≈ 2(1 − α) of the
// elements — is added back in high precision as ΔA·W. The quantile is the released code's: sort
// the row, lower = sorted[⌊(1 − α)·n⌋], upper = sorted[⌊α·n⌋] (0-based; Python float arithmetic),
// found here by selection rather than a sort (the same values).

export interface OccOptions {
  alpha: number;
}

export const OCC_DEFAULTS: OccOptions = { alpha: 0.99 };

/** The clamped rows and the residual as a sparse matrix (CSR over rows). */
export interface ClampedRows {
  clamped: Float32Array;
  /** rowStart[r] … rowStart[r + 1] index `columns` / `residuals` of row r. */
  rowStart: Int32Array;
  columns: Int32Array;
  /** v − clamp(v) rounded to float32 (the released code rounds it to its bf16 input's dtype: lossy);
   *  where float32 cannot hold it (|v − clamp(v)| > 3.4e38: a huge value in a row whose quantile lies far on the other side)
   *  the float64 difference, which the residual product and its gradient then use as it is. */
  residuals: Float64Array;
}

export function clampRows(x: Float32Array, rows: number, cols: number, o: OccOptions = OCC_DEFAULTS): ClampedRows {
  const clamped = new Float32Array(x.length);
  const rowStart = new Int32Array(rows + 1);
  const columns: number[] = [];
  const residuals: number[] = [];
  const lowAt = Math.min(cols - 1, Math.floor((1 - o.alpha) * cols));
  const highAt = Math.min(cols - 1, Math.floor(o.alpha * cols));
  const keys = new Uint32Array(cols);
  const sorted = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    let lo: number;
    let hi: number;
    if (orderKeys(row, keys)) {
      lo = keyValue(selectKey(keys, lowAt));
      hi = keyValue(selectKey(keys, highAt));
    } else {
      // A NaN in the row: the typed-array sort's order (NaN last) decides.
      sorted.set(row);
      sorted.sort();
      lo = sorted[lowAt];
      hi = sorted[highAt];
    }
    for (let c = 0; c < cols; c++) {
      const v = row[c];
      const k = v < lo ? lo : v > hi ? hi : v;
      clamped[r * cols + c] = k;
      if (k !== v) {
        columns.push(c);
        const d = Math.fround(v - k);
        residuals.push(Number.isFinite(d) || !Number.isFinite(v) ? d : v - k);
      }
    }
    rowStart[r + 1] = columns.length;
  }
  return { clamped, rowStart, columns: Int32Array.from(columns), residuals: Float64Array.from(residuals) };
}

// sorted[k] without sorting: each float32 as an unsigned key in the order Float32Array#sort gives
// (−∞ … −0 < +0 … +∞; the sign-magnitude bits flipped into a monotone integer), then quickselect.
const bits = new Uint32Array(1);
const asFloat = new Float32Array(bits.buffer);

/** Keys of `row` into `keys`; false when the row holds a NaN (no key orders NaN as the sort does). */
function orderKeys(row: Float32Array, keys: Uint32Array): boolean {
  const u = new Uint32Array(row.buffer, row.byteOffset, row.length);
  for (let i = 0; i < row.length; i++) {
    const b = u[i];
    if ((b & 0x7fffffff) > 0x7f800000) return false;
    keys[i] = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
  }
  return true;
}

function keyValue(key: number): number {
  bits[0] = key & 0x80000000 ? key ^ 0x80000000 : ~key >>> 0;
  return asFloat[0];
}

/** The k-th smallest key (0-based); reorders `keys` (Hoare partition, middle pivot). */
function selectKey(keys: Uint32Array, k: number): number {
  let left = 0;
  let right = keys.length - 1;
  while (left < right) {
    const pivot = keys[(left + right) >>> 1];
    let i = left;
    let j = right;
    while (i <= j) {
      while (keys[i] < pivot) i++;
      while (keys[j] > pivot) j--;
      if (i <= j) {
        const t = keys[i];
        keys[i] = keys[j];
        keys[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return keys[k];
  }
  return keys[k];
}

/** ΔA·W for W [cols, n] (row-major), float64 accumulation per output, rounded to float32. */
export function residualProduct(c: ClampedRows, rows: number, w: Float32Array, n: number): Float32Array {
  const out = new Float32Array(rows * n);
  const acc = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    acc.fill(0);
    for (let e = c.rowStart[r]; e < c.rowStart[r + 1]; e++) {
      const d = c.residuals[e];
      const wRow = c.columns[e] * n;
      for (let j = 0; j < n; j++) acc[j] += d * w[wRow + j];
    }
    for (let j = 0; j < n; j++) out[r * n + j] = acc[j];
  }
  return out;
}
