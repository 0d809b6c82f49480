// binaryDense: tf.layers.dense with binary weights and activations (1-bit FQT, Gao et al. 2024).
// y = α ⊙ (sign(x) · sign(W)) + bias, with a learnable per-output-channel scale α (initialised to
// 1) and the backward products on quantized output gradients (binary-ops.ts). It is a subclass of
// tfjs-layers' own Dense (the class the tfjs copy the program loaded registers): every Dense option means what it means there and the weights are Dense's 'kernel' and
// 'bias', plus 'alpha'. Serializes as 'BinaryDense'.

import * as tf from '@tensorflow/tfjs';
import { checkLayerArgs, checkOptionNames, checkPositiveInteger, DENSE_OPTIONS } from './base-options.js';
import { tfjsLayerClass } from './tfjs-layer-class.js';
import { binaryMatMul, setWeightsWithAlpha, StepSeeds } from './binary-ops.js';
import { BINARY_OPTIONS, binaryConfig, layerSeed, layerStreamSeed, readBinaryOptions, type BinaryLayerConfig, type BinaryLayerOptions } from './binary-options.js';

type DenseArgs = Parameters<typeof tf.layers.dense>[0];
export type BinaryDenseArgs = DenseArgs & BinaryLayerOptions;

interface DenseInternals {
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  activation: { apply(t: tf.Tensor): tf.Tensor };
  units: number;
  invokeCallHook(inputs: tf.Tensor | tf.Tensor[], kwargs: tf.serialization.ConfigDict): void;
}

// tfjs-layers exports no Dense class, but registers it for deserialization.
const Dense = tfjsLayerClass<new (args: DenseArgs) => tf.layers.Layer>('Dense');

export class BinaryDense extends Dense {
  static readonly className = 'BinaryDense';
  readonly binary: BinaryLayerConfig;
  private alpha: tf.LayerVariable | null = null;
  private readonly seeds: StepSeeds;

  constructor(args: BinaryDenseArgs) {
    checkLayerArgs('binaryDense', args, '{ units, … }');
    checkOptionNames('binaryDense', args, DENSE_OPTIONS, BINARY_OPTIONS);
    checkPositiveInteger('binaryDense', 'units', args.units);
    const binary = readBinaryOptions('binaryDense', args);
    super(args);
    this.binary = { ...binary, seed: binary.seed ?? layerSeed(this.name) };
    this.seeds = new StepSeeds(layerStreamSeed(this.binary.seed, this.name), this.binary.seedStep);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    super.build(inputShape);
    const self = this as unknown as DenseInternals;
    this.alpha = this.addWeight('alpha', [self.units], 'float32', tf.initializers.ones());
  }

  /** Also takes the parent layer's own weights alone ([kernel] or [kernel, bias], e.g. from the
   *  `weights` option or another layer's getWeights()): α then keeps its initial ones. */
  override setWeights(weights: tf.Tensor[]): void {
    if (this.alpha === null) return super.setWeights(weights);
    setWeightsWithAlpha(weights, this.weights.length, (this as unknown as { units: number }).units, (all) => super.setWeights(all));
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: tf.serialization.ConfigDict): tf.Tensor {
    return tf.tidy(() => {
      const self = this as unknown as DenseInternals;
      self.invokeCallHook(inputs, kwargs);
      const list = Array.isArray(inputs) ? inputs : [inputs];
      if (list.length !== 1) throw new RangeError(`binaryDense: expected exactly one input tensor, got ${list.length}`);
      let x = list[0];
      if (x.dtype !== 'float32') x = tf.cast(x, 'float32');
      const shape = x.shape;
      const k = shape[shape.length - 1];
      const rows = (shape.length === 2 ? x : x.reshape([-1, k])) as tf.Tensor2D;
      let y: tf.Tensor = binaryMatMul(rows, self.kernel.read() as tf.Tensor2D, this.alpha!.read() as tf.Tensor1D, this.binary, this.seeds);
      if (shape.length !== 2) y = y.reshape([...shape.slice(0, -1), self.units]);
      if (self.bias !== null) y = tf.add(y, self.bias.read());
      return self.activation.apply(y);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...binaryConfig(this.binary, this.seeds.step) };
  }
}
tf.serialization.registerClass(BinaryDense as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);

export function binaryDense(args: BinaryDenseArgs): BinaryDense {
  return new BinaryDense(args);
}
