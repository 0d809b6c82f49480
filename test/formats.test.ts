// The format table: storage cost per element, scales included.
import { expect, it } from 'vitest';
import { BLOCK_FORMATS, bitsPerElement } from '../lib/index.js';

it('counts storage per element with scales included', () => {
  expect(bitsPerElement(BLOCK_FORMATS.nvfp4)).toBe(4.5);
  expect(bitsPerElement(BLOCK_FORMATS.mxfp4)).toBe(4.25);
  expect(bitsPerElement(BLOCK_FORMATS.mxfp6_e2m3)).toBe(6.25);
  expect(bitsPerElement(BLOCK_FORMATS.mxfp8_e4m3)).toBe(8.25);
});
