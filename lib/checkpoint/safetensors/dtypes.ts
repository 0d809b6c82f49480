// The safetensors dtype names and their sizes in bytes (the format's own list, plus the FP8/FP4
// names recent versions added). Sub-byte F4 is not accepted: its byte length is ambiguous.

export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
  C64: 8,
};

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BYTES;

export function isKnownDtype(d: unknown): d is string {
  return typeof d === 'string' && Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_BYTES, d);
}

/** The floating-point input dtypes fp4kit quantizes. */
export const QUANTIZABLE_DTYPES = new Set(['F32', 'F16', 'BF16']);
