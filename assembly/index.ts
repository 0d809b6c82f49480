// The WebAssembly module's entry: every kernel of lib/kernels/contract.ts over pointers into this
// module's memory (FGMP's candidates included), the FP4×INT8 matmul, and where free memory starts. No managed objects are
// ever allocated, so everything above heapBase() belongs to the JavaScript side
// (lib/kernels/wasm-memory.ts), which grows the memory itself.

export { encodeElements, decodeElements } from "./element-codec";
export { quantizeMx, dequantizeMx } from "./mx";
export { quantizeNvfp4, dequantizeNvfp4, absMaxBits } from "./nvfp4";
export { errorSums } from "./error-sums";
export { dequantizeFgmp } from "./fgmp-dequantize";
export { activationUnitSums, decodeFp8Lanes, matmulFp4Int8, relaxedSimd } from "./matmul";
export { matmulPlanesInt8 } from "./matmul-planes";
export { matmulDecoded } from "./matmul-decoded";
export { alignRows, matmulAligned } from "./matmul-aligned";
export { fgmpCandidates } from "./fgmp";
export { packSignsRows, packBitPlanesRows, bitplaneSignSums, bitplaneMatmulRows } from "./bitplane-gemm";
export { gradientRangesInit, gradientRanges, gradientRangesFinish, gradientKeep, gradientCodes, gradientDequantize } from "./gradient-quant";

/** First byte past the static data: scratch regions start here. */
export function heapBase(): usize {
  return __heap_base;
}
