// The environment flags of the fp4kit TensorFlow.js backend, registered with tfjs's own flag
// registry so they are set like any tfjs flag: tf.env().set('FP4KIT_WEIGHTS', 'mxfp4').
//
// FP4KIT_WEIGHTS         the format weights are quantized to before a product: 'nvfp4' (default),
//                        'mxfp4', 'mxfp8_e4m3', 'fgmp' (70 % NVFP4 blocks, 30 % FP8), or 'none'
//                        (float32 products in fp4kit's documented accumulation order).
// FP4KIT_WEIGHT_TENSORS  which B operands count as weights: 'variables' (default: the data of a
//                        tf.Variable, e.g. every tfjs-layers kernel) or 'all' (every B operand and
//                        every conv filter, e.g. the constant weights of a tfjs GraphModel).

import * as tf from '@tensorflow/tfjs';
import { describe, notOneOf } from '../core/describe.js';

export const WEIGHT_MODES = ['nvfp4', 'mxfp4', 'mxfp8_e4m3', 'fgmp', 'none'] as const;
export type WeightMode = (typeof WEIGHT_MODES)[number];

export const WEIGHT_TENSOR_CHOICES = ['variables', 'all'] as const;
export type WeightTensors = (typeof WEIGHT_TENSOR_CHOICES)[number];

export const WEIGHTS_FLAG = 'FP4KIT_WEIGHTS';
export const WEIGHT_TENSORS_FLAG = 'FP4KIT_WEIGHT_TENSORS';

/** `where` names the call: the set hook's, or, for a value set without it (tf.env().setFlags(),
 *  which calls no hook), the flag as a kernel reads it. */
function checkChoice<T extends string>(flag: string, value: unknown, choices: readonly T[], where = `tf.env().set('${flag}')`): T {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
  const got = typeof value === 'string' ? `'${value}'` : describe(value);
  throw notOneOf('string', value, `${where}: the value must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${got}`);
}

const setWithoutCheck = (flag: string) => `the ${flag} flag (set by tf.env().setFlags(), which checks no value)`;

/**
 * A set hook that refuses a bad value: tfjs stores the value before it calls the hook, so the hook
 * puts back the value it last accepted on the same flags object (tf.env().reset() and setFlags()
 * replace that object; then the flag falls back to its default) and throws.
 */
function guard<T extends string>(flag: string, choices: readonly T[]): (value: unknown) => void {
  let last: { flags: Record<string, unknown>; value: T } | undefined;
  return (value) => {
    const flags = tf.env().getFlags() as Record<string, unknown>;
    try {
      last = { flags, value: checkChoice(flag, value, choices) };
    } catch (err) {
      if (last !== undefined && last.flags === flags) flags[flag] = last.value;
      else delete flags[flag];
      throw err;
    }
  };
}

/** Registers both flags once per tfjs environment (a second import of this module is a no-op). */
export function registerFlags(): void {
  const registry = (tf.env() as unknown as { flagRegistry: Record<string, unknown> }).flagRegistry;
  if (!(WEIGHTS_FLAG in registry)) tf.env().registerFlag(WEIGHTS_FLAG, () => 'nvfp4', guard(WEIGHTS_FLAG, WEIGHT_MODES));
  if (!(WEIGHT_TENSORS_FLAG in registry)) tf.env().registerFlag(WEIGHT_TENSORS_FLAG, () => 'variables', guard(WEIGHT_TENSORS_FLAG, WEIGHT_TENSOR_CHOICES));
}

/** The weight format the kernels use now. */
export function weightMode(): WeightMode {
  return checkChoice(WEIGHTS_FLAG, tf.env().get(WEIGHTS_FLAG), WEIGHT_MODES, setWithoutCheck(WEIGHTS_FLAG));
}

/** Which B operands are weights now. */
export function weightTensors(): WeightTensors {
  return checkChoice(WEIGHT_TENSORS_FLAG, tf.env().get(WEIGHT_TENSORS_FLAG), WEIGHT_TENSOR_CHOICES, setWithoutCheck(WEIGHT_TENSORS_FLAG));
}
