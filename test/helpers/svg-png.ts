// Reads back the greyscale PNG a precision map embeds (lib/checkpoint/gray-png.ts): the cells'
// shades, so a test can check which blocks were drawn FP8 (black) and which FP4 (white).
import { inflateSync } from 'node:zlib';

export function embeddedGrayPng(svg: string): { width: number; height: number; pixels: Uint8Array } {
  const m = /href="data:image\/png;base64,([A-Za-z0-9+/=]+)"/.exec(svg);
  if (!m) throw new Error('no embedded PNG');
  const png = Buffer.from(m[1], 'base64');
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  // Chunks after the 8-byte signature: length, type, data, CRC.
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === 'IDAT') idat.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const pixels = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    if (raw[y * (width + 1)] !== 0) throw new Error('a scanline filter other than none');
    pixels.set(raw.subarray(y * (width + 1) + 1, (y + 1) * (width + 1)), y * width);
  }
  return { width, height, pixels };
}
