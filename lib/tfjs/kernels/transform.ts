// Transform (tf.image.transform: projective warps, as in data augmentation) where the stock
// kernels are wrong (tfjs 4.22): tfjs cpu's returns from inside its loop over the batch, so every
// image after the first comes out as the fill value; the wasm base's 'reflect' maps coordinates
// outside the image by another rule than TensorFlow's (ImageProjectiveTransformV3, which cpu's
// ports). Here tfjs cpu's loop runs for every image: its arithmetic (float64 coordinates, Math.round
// for 'nearest'), so batch 0 gets cpu's bits and every other image the same rule. On the cpu base
// this replaces the kernel; on the wasm base only 'reflect' comes here, the other fill modes (right
// there) stay with the base.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { fp4kitKernel } from '../kernel-context.js';
import { floatValues } from '../storage.js';

type FillMode = 'constant' | 'reflect' | 'wrap' | 'nearest';

export function transformKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('Transform', backendName, base, (ctx, inputs, attrs) => {
    const { image, transforms } = inputs as { image: TensorInfo; transforms: TensorInfo };
    const fillMode = attrs.fillMode as FillMode;
    if (base?.backendName === 'wasm' && fillMode !== 'reflect') return undefined;
    if (image.dtype !== 'float32' || transforms.dtype !== 'float32') return undefined;
    const [batch, height, width, channels] = image.shape;
    const outputShape = attrs.outputShape as [number, number] | null | undefined;
    const [outHeight, outWidth] = outputShape ?? [height, width];
    return ctx.storage.outputFilled([batch, outHeight, outWidth, channels], (out) =>
      projectiveTransform(floatValues(ctx.storage, image), [batch, height, width, channels], floatValues(ctx.storage, transforms), transforms.shape[0],
        attrs.interpolation as 'nearest' | 'bilinear', fillMode, attrs.fillValue as number, outHeight, outWidth, out));
  });
}

/** tfjs cpu's Transform loop (tfjs-backend-cpu/src/kernels/Transform.ts) over every image of the batch. */
export function projectiveTransform(image: Float32Array, [batch, height, width, channels]: number[], transforms: Float32Array, transformCount: number,
  interpolation: 'nearest' | 'bilinear', fillMode: FillMode, fillValue: number, outHeight: number, outWidth: number, out: Float32Array): void {
  if (interpolation !== 'nearest' && interpolation !== 'bilinear') throw new Error(`Error in Transform: Expect 'nearest' or 'bilinear', but got ${interpolation}`);
  out.fill(fillValue);
  const read = (b: number, y: number, x: number, c: number) =>
    (0 <= y && y < height && 0 <= x && x < width ? image[((b * height + y) * width + x) * channels + c] : fillValue);
  for (let b = 0; b < batch; b++) {
    const t = transformCount === 1 ? 0 : b * 8;
    for (let outY = 0; outY < outHeight; outY++) {
      for (let outX = 0; outX < outWidth; outX++) {
        const projection = transforms[t + 6] * outX + transforms[t + 7] * outY + 1;
        if (projection === 0) continue; // a point at infinity: the fill value
        const x = mapCoord((transforms[t] * outX + transforms[t + 1] * outY + transforms[t + 2]) / projection, width, fillMode);
        const y = mapCoord((transforms[t + 3] * outX + transforms[t + 4] * outY + transforms[t + 5]) / projection, height, fillMode);
        const at = ((b * outHeight + outY) * outWidth + outX) * channels;
        for (let c = 0; c < channels; c++) {
          if (interpolation === 'nearest') {
            out[at + c] = read(b, Math.round(y), Math.round(x), c);
          } else {
            const y0 = Math.floor(y), x0 = Math.floor(x), y1 = y0 + 1, x1 = x0 + 1;
            const top = (x1 - x) * read(b, y0, x0, c) + (x - x0) * read(b, y0, x1, c);
            const bottom = (x1 - x) * read(b, y1, x0, c) + (x - x0) * read(b, y1, x1, c);
            out[at + c] = (y1 - y) * top + (y - y0) * bottom;
          }
        }
      }
    }
  }
}

/** An input coordinate for a point outside [0, len − 1], by fill mode (tfjs cpu's, after TensorFlow's). */
function mapCoord(coord: number, len: number, mode: FillMode): number {
  let c = coord;
  if (mode === 'reflect') {
    // [abcd] → [dcba|abcd|dcba]
    if (c < 0) {
      if (len <= 1) c = 0;
      else {
        const size = 2 * len;
        if (c < size) c = size * Math.trunc(-c / size) + c;
        c = c < -len ? c + size : -c - 1;
      }
    } else if (c > len - 1) {
      if (len <= 1) c = 0;
      else {
        const size = 2 * len;
        c -= size * Math.trunc(c / size);
        if (c >= len) c = size - c - 1;
      }
    }
    return clamp(c, len);
  }
  if (mode === 'wrap') {
    // [abcd] → [abcd|abcd|abcd]
    if (c < 0) c = len <= 1 ? 0 : c + len * (Math.trunc(-c / (len - 1)) + 1);
    else if (c > len - 1) c = len <= 1 ? 0 : c - len * Math.trunc(c / (len - 1));
    return clamp(c, len);
  }
  if (mode === 'nearest') return clamp(c, len);
  return c; // 'constant': outside reads the fill value
}

/** Clamped to [0, len − 1]: a coordinate of 3.5 in a length of 4 would round to 4. */
const clamp = (c: number, len: number) => Math.min(Math.max(c, 0), len - 1);
