// binaryConv2d: tf.layers.conv2d with binary weights and activations (1-bit FQT, Gao et al. 2024).
// y = α ⊙ conv2d(sign(x), sign(W)) + bias, α a learnable per-output-channel scale (initialised to
// 1), the backward products on quantized output gradients (binary-ops.ts: per sample = all output
// positions and channels of one sample, per channel = one output channel over the batch). A
// subclass of tfjs-layers' own Conv2D: every conv2d option means what it means there (dilation
// other than 1 is refused). Serializes as 'BinaryConv2D'.

import * as tf from '@tensorflow/tfjs';
import { checkIntegerPair, checkLayerArgs, checkOptionNames, checkPositiveInteger, CONV2D_OPTIONS } from './base-options.js';
import { tfjsLayerClass } from './tfjs-layer-class.js';
import { binaryConv2d as binaryConv2dOp, setWeightsWithAlpha, StepSeeds } from './binary-ops.js';
import { BINARY_OPTIONS, binaryConfig, layerSeed, layerStreamSeed, readBinaryOptions, type BinaryLayerConfig, type BinaryLayerOptions } from './binary-options.js';

type Conv2dArgs = Parameters<typeof tf.layers.conv2d>[0];
export type BinaryConv2dArgs = Conv2dArgs & BinaryLayerOptions;

interface ConvInternals {
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  activation: { apply(t: tf.Tensor): tf.Tensor };
  filters: number;
  strides: number[];
  padding: 'valid' | 'same' | 'causal';
  dataFormat: 'channelsFirst' | 'channelsLast';
  dilationRate: number | number[];
  invokeCallHook(inputs: tf.Tensor | tf.Tensor[], kwargs: tf.serialization.ConfigDict): void;
}

const Conv2D = tfjsLayerClass<new (args: Conv2dArgs) => tf.layers.Layer>('Conv2D');

export class BinaryConv2D extends Conv2D {
  static readonly className = 'BinaryConv2D';
  readonly binary: BinaryLayerConfig;
  private alpha: tf.LayerVariable | null = null;
  private readonly seeds: StepSeeds;

  constructor(args: BinaryConv2dArgs) {
    checkLayerArgs('binaryConv2d', args, '{ filters, kernelSize, … }');
    checkOptionNames('binaryConv2d', args, CONV2D_OPTIONS, BINARY_OPTIONS);
    checkPositiveInteger('binaryConv2d', 'filters', args.filters);
    checkIntegerPair('binaryConv2d', 'kernelSize', args.kernelSize, false);
    checkIntegerPair('binaryConv2d', 'strides', args.strides, true);
    const binary = readBinaryOptions('binaryConv2d', args);
    super(args);
    const self = this as unknown as ConvInternals;
    const dilation = Array.isArray(self.dilationRate) ? self.dilationRate : [self.dilationRate];
    if (dilation.some((d) => d !== 1)) throw new RangeError(`binaryConv2d: dilationRate must be 1, got ${JSON.stringify(self.dilationRate)}`);
    if (self.padding === 'causal') throw new RangeError("binaryConv2d: padding must be 'valid' or 'same'");
    this.binary = { ...binary, seed: binary.seed ?? layerSeed(this.name) };
    this.seeds = new StepSeeds(layerStreamSeed(this.binary.seed, this.name), this.binary.seedStep);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    super.build(inputShape);
    const self = this as unknown as ConvInternals;
    this.alpha = this.addWeight('alpha', [self.filters], 'float32', tf.initializers.ones());
  }

  /** Also takes the parent layer's own weights alone ([kernel] or [kernel, bias], e.g. from the
   *  `weights` option or another layer's getWeights()): α then keeps its initial ones. */
  override setWeights(weights: tf.Tensor[]): void {
    if (this.alpha === null) return super.setWeights(weights);
    setWeightsWithAlpha(weights, this.weights.length, (this as unknown as { filters: number }).filters, (all) => super.setWeights(all));
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: tf.serialization.ConfigDict): tf.Tensor {
    return tf.tidy(() => {
      const self = this as unknown as ConvInternals;
      self.invokeCallHook(inputs, kwargs);
      const list = Array.isArray(inputs) ? inputs : [inputs];
      if (list.length !== 1) throw new RangeError(`binaryConv2d: expected exactly one input tensor, got ${list.length}`);
      let x = list[0];
      if (x.dtype !== 'float32') x = tf.cast(x, 'float32');
      if (x.rank !== 4) throw new RangeError(`binaryConv2d: expected a rank-4 input, got rank ${x.rank}`);
      // The op works in NHWC; channels-first inputs are transposed in and out, as tfjs-layers does.
      const channelsFirst = self.dataFormat === 'channelsFirst';
      if (channelsFirst) x = tf.transpose(x, [0, 2, 3, 1]);
      let y: tf.Tensor = binaryConv2dOp(x as tf.Tensor4D, self.kernel.read() as tf.Tensor4D, this.alpha!.read() as tf.Tensor1D,
        { strides: [self.strides[0], self.strides[1]], pad: self.padding as 'valid' | 'same' }, this.binary, this.seeds);
      if (self.bias !== null) y = tf.add(y, self.bias.read());
      if (channelsFirst) y = tf.transpose(y, [0, 3, 1, 2]);
      return self.activation.apply(y);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...binaryConfig(this.binary, this.seeds.step) };
  }
}
tf.serialization.registerClass(BinaryConv2D as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);

export function binaryConv2d(args: BinaryConv2dArgs): BinaryConv2D {
  return new BinaryConv2D(args);
}
