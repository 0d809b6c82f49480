// The output layouts by name, and reading a stored tensor back through its layout's decode.
import { describe, notOneOf } from '../../core/describe.js';
import { checkOptions, checkTensorScale } from '../../core/validate.js';
import { dequantize, type QuantizedTensor } from '../../core/quantize.js';
import type { FgmpTensor } from '../../fgmp/quantize.js';
import { swapLastTwo, transposeLastTwo } from '../../core/transpose.js';
import { compressedTensorsLayout } from './compressed-tensors.js';
import { fp4kitLayout } from './fp4kit.js';
import { gptOssLayout } from './gpt-oss.js';
import { modeloptLayout } from './modelopt.js';
import type { Layout, LayoutName, QuantFormat, TensorBytes } from './types.js';

export const LAYOUT_NAMES: readonly LayoutName[] = ['fp4kit', 'compressed-tensors', 'modelopt', 'gpt-oss'];

export interface LayoutOptions {
  /** modelopt: a calibrated activation decode scale to store as input_scale. */
  inputScale?: number;
}

export function layoutByName(name: string, options?: LayoutOptions): Layout {
  const fn = 'layoutByName';
  const { inputScale } = checkOptions<LayoutOptions>(fn, options, '{ inputScale? }', true, ['inputScale']);
  if (inputScale !== undefined) {
    checkTensorScale(fn, inputScale, 'options.inputScale');
    if (name !== 'modelopt') throw new RangeError(`${fn}: options.inputScale applies to the modelopt layout only (its input_scale)`);
  }
  switch (name) {
    case 'fp4kit': return fp4kitLayout;
    case 'compressed-tensors': return compressedTensorsLayout;
    case 'modelopt': return modeloptLayout(inputScale);
    case 'gpt-oss': return gptOssLayout;
    default: throw notOneOf('string', name, `${fn}: unknown layout ${describe(name)}; expected one of ${LAYOUT_NAMES.join(', ')}`);
  }
}

/** Rebuild the quantized tensor `name` (input name, input `shape`) stored in `layout`. Its shape is the
 *  blocked shape: the input shape, or for tensors the layout transposes before blocking (gpt-oss
 *  experts, [E, in, out]) the stored order [E, out, in]. */
export function readBackTensor(
  layout: LayoutName, get: TensorBytes, name: string, format: QuantFormat, shape: number[], scaleRule?: 'floor' | 'ceil',
): Promise<QuantizedTensor | FgmpTensor> {
  const l = layoutByName(layout);
  return l.decode(get, name, format, l.transposedForBlocking?.(name) ? swapLastTwo(shape) : shape, scaleRule);
}

/** The dequantized values of tensor `name` in the order of the input tensor (shape `shape`): what a
 *  loader of `layout` puts into the model. */
export async function readBackValues(
  layout: LayoutName, get: TensorBytes, name: string, format: QuantFormat, shape: number[], scaleRule?: 'floor' | 'ceil',
): Promise<Float32Array> {
  const q = await readBackTensor(layout, get, name, format, shape, scaleRule);
  const values = dequantize(q);
  return layoutByName(layout).transposedForBlocking?.(name) ? transposeLastTwo(values, q.shape) : values;
}

export type { Layout, LayoutName, QuantFormat, TensorBytes } from './types.js';
