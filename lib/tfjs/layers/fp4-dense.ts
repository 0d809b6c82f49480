// fp4Dense: tf.layers.dense whose product is W4A4 as in FP4 LLM training (Wang et al., arXiv
// 2501.17116): E2M1 weights (per output channel) and activations (per token), DGE on the weight
// gradient, OCC on the activations, FP8 E5M2 output gradients (fp4-ops.ts). A subclass of
// tfjs-layers' own Dense (the class tfjs registers, as binary-dense.ts takes it): every Dense option
// means what it means there, the weights are Dense's 'kernel' and 'bias'. Serializes as 'Fp4Dense'.

import * as tf from '@tensorflow/tfjs';
import { checkLayerArgs, checkOptionNames, checkPositiveInteger, DENSE_OPTIONS } from './base-options.js';
import { tfjsLayerClass } from './tfjs-layer-class.js';
import { isArray } from '../../core/validate.js';
import { fp4MatMul, type Fp4ForwardStats } from './fp4-ops.js';
import { FP4_OPTIONS, fp4Config, readFp4Options, type Fp4LayerConfig, type Fp4LayerOptions, type Fp4WeightScaling } from './fp4-options.js';

type DenseArgs = Parameters<typeof tf.layers.dense>[0];
/** Dense's options and the FP4 ones; `weights` is Dense's (initial weights), or as a string the
 *  earlier name of `scaling`. */
export type Fp4DenseArgs = Omit<DenseArgs, 'weights'> & Fp4LayerOptions & { weights?: DenseArgs['weights'] | Fp4WeightScaling };

interface DenseInternals {
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  activation: { apply(t: tf.Tensor): tf.Tensor };
  units: number;
  invokeCallHook(inputs: tf.Tensor | tf.Tensor[], kwargs: tf.serialization.ConfigDict): void;
}

const Dense = tfjsLayerClass<new (args: DenseArgs) => tf.layers.Layer>('Dense');

export class Fp4Dense extends Dense {
  static readonly className = 'Fp4Dense';
  readonly fp4: Fp4LayerConfig;
  /** What the last forward pass did (OCC's clamped fraction). */
  readonly lastForward: Fp4ForwardStats = { clampedFraction: 0 };

  constructor(args: Fp4DenseArgs) {
    checkLayerArgs('fp4Dense', args, '{ units, … }');
    checkOptionNames('fp4Dense', args, DENSE_OPTIONS, FP4_OPTIONS);
    checkPositiveInteger('fp4Dense', 'units', args.units);
    const fp4 = readFp4Options('fp4Dense', args);
    const { dge: _dge, occ: _occ, gradients: _g, scaling: _s, ties: _t, weights, ...rest } = args;
    // An array under `weights` is Dense's own option (initial weights); a string was the FP4 scaling.
    super(isArray(weights) ? { ...rest, weights } : rest);
    this.fp4 = fp4;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: tf.serialization.ConfigDict): tf.Tensor {
    return tf.tidy(() => {
      const self = this as unknown as DenseInternals;
      self.invokeCallHook(inputs, kwargs);
      const list = Array.isArray(inputs) ? inputs : [inputs];
      if (list.length !== 1) throw new RangeError(`fp4Dense: expected exactly one input tensor, got ${list.length}`);
      let x = list[0];
      if (x.dtype !== 'float32') x = tf.cast(x, 'float32');
      const shape = x.shape;
      const k = shape[shape.length - 1];
      const rows = (shape.length === 2 ? x : x.reshape([-1, k])) as tf.Tensor2D;
      let y: tf.Tensor = fp4MatMul(rows, self.kernel.read() as tf.Tensor2D, this.fp4, this.lastForward);
      if (shape.length !== 2) y = y.reshape([...shape.slice(0, -1), self.units]);
      if (self.bias !== null) y = tf.add(y, self.bias.read());
      return self.activation.apply(y);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...fp4Config(this.fp4) } as tf.serialization.ConfigDict;
  }
}
tf.serialization.registerClass(Fp4Dense as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);

export function fp4Dense(args: Fp4DenseArgs): Fp4Dense {
  return new Fp4Dense(args);
}
