// The output layouts by name.
import { compressedTensorsLayout } from './compressed-tensors.js';
import { fp4kitLayout } from './fp4kit.js';
import { gptOssLayout } from './gpt-oss.js';
import { modeloptLayout } from './modelopt.js';
import type { Layout, LayoutName } from './types.js';

export const LAYOUT_NAMES: readonly LayoutName[] = ['fp4kit', 'compressed-tensors', 'modelopt', 'gpt-oss'];

export interface LayoutOptions {
  /** modelopt: a calibrated activation decode scale to store as input_scale. */
  inputScale?: number;
}

export function layoutByName(name: string, options: LayoutOptions = {}): Layout {
  switch (name) {
    case 'fp4kit': return fp4kitLayout;
    case 'compressed-tensors': return compressedTensorsLayout;
    case 'modelopt': return modeloptLayout(options.inputScale);
    case 'gpt-oss': return gptOssLayout;
    default: throw new RangeError(`unknown layout ${JSON.stringify(name)}; expected one of ${LAYOUT_NAMES.join(', ')}`);
  }
}

export type { Layout, LayoutName, QuantFormat } from './types.js';
