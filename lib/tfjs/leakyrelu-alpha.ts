// The fused kernels' leaky-ReLU slope when a model gives none. tfjs's leakyRelu op defaults alpha
// to 0.2, and that is what a fused op computes unfused (under a gradient tape, and in cpu's
// _FusedMatMul); but tf.fused.conv2d and depthwiseConv2d pass `leakyreluAlpha` on to their
// kernels as given, undefined when unset, and the stock kernels then disagree: cpu's FusedConv2D
// and FusedDepthwiseConv2D multiply by undefined (NaN), wasm's read 0 (a ReLU). Both fp4kit
// backends fill in 0.2 before any of their fused kernels runs, whichever base or fallback runs it.

import type { KernelConfig, KernelFunc, NamedAttrMap } from '@tensorflow/tfjs';

/** tfjs's leakyRelu op's default alpha. */
export const DEFAULT_LEAKYRELU_ALPHA = 0.2;

/** The kernels that take `activation` and `leakyreluAlpha` attributes. */
export const FUSED_ACTIVATION_KERNELS: readonly string[] = ['_FusedMatMul', 'FusedConv2D', 'FusedDepthwiseConv2D'];

/** `config` with a leaky ReLU's missing alpha set to the op's default before its kernel runs. */
export function withDefaultLeakyreluAlpha(config: KernelConfig): KernelConfig {
  const run = config.kernelFunc;
  const kernelFunc = ((args: Parameters<KernelFunc>[0]) => {
    const attrs = args.attrs as NamedAttrMap | undefined;
    if (attrs?.activation !== 'leakyrelu' || attrs.leakyreluAlpha != null) return run(args);
    return run({ ...args, attrs: { ...attrs, leakyreluAlpha: DEFAULT_LEAKYRELU_ALPHA } });
  }) as KernelFunc;
  return { ...config, kernelFunc };
}
