// Packing codes: FP4 element 2i in the low nibble of byte i, FP6 in little-endian 6-bit fields.
import { expect, it } from 'vitest';
import { pack, unpack } from '../lib/index.js';

it('packs FP4 low nibble first and FP6 in little-endian 6-bit fields', () => {
  expect([...pack(new Uint8Array([0x1, 0x2, 0xf, 0x0]), 4)]).toEqual([0x21, 0x0f]);
  // codes a,b,c,d → 24-bit word a | b<<6 | c<<12 | d<<18, bytes low to high
  const w = 0x01 | (0x02 << 6) | (0x03 << 12) | (0x3f << 18);
  expect([...pack(new Uint8Array([1, 2, 3, 63]), 6)]).toEqual([w & 0xff, (w >> 8) & 0xff, (w >> 16) & 0xff]);
  const codes = Uint8Array.from({ length: 37 }, (_, i) => (i * 7) % 64);
  expect([...unpack(pack(codes, 6), 6, 37)]).toEqual([...codes]);
});
