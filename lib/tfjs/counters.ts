// What the fp4kit tfjs kernels did, for tests and for users checking which path their model takes.

export interface Fp4kitTfjsCounters {
  /** Products with a quantized weight operand (activations quantized on the fly to MXINT8). */
  quantizedProducts: number;
  /** float32 products ('none', or no operand counted as a weight: gradients, attention scores). */
  floatProducts: number;
  /** Weight operands quantized (or, for 'none', laid out) and stored in a cache. */
  weightsPrepared: number;
  /** Products that found their weight operand in a cache. */
  weightCacheHits: number;
  /** Cache entries released because their tensor was disposed, a variable was assigned, or a weight
   *  had more pieces cached than MAX_CACHED_PIECES (weight-cache.ts). */
  weightsReleased: number;
  /** Calls handed to the base backend's own kernel (non-float32 dtypes, NCHW convolutions). */
  baseKernelCalls: number;
}

export const counters: Fp4kitTfjsCounters = {
  quantizedProducts: 0, floatProducts: 0, weightsPrepared: 0, weightCacheHits: 0, weightsReleased: 0, baseKernelCalls: 0,
};

/** A snapshot of the counters since the last reset. */
export function readCounters(): Fp4kitTfjsCounters {
  return { ...counters };
}

export function resetCounters(): void {
  for (const key of Object.keys(counters) as (keyof Fp4kitTfjsCounters)[]) counters[key] = 0;
}
