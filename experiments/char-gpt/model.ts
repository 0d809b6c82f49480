// A small GPT-style character model in TensorFlow.js: token and learned position embeddings,
// pre-LayerNorm blocks of causal multi-head self-attention and a GELU MLP (4·d), a final LayerNorm
// and a float32 output head. Every linear layer of a block — QKV, attention output, MLP up, MLP
// down — comes from `linear(units)`: tf.layers.dense (float32) or fp4kit's fp4Dense with the
// variant's options (FP4 LLM training, Wang et al. 2025: DGE + OCC, direct W4A4, DGE only, OCC only).

import * as tf from '@tensorflow/tfjs';
import { layers as fp4layers } from '../../lib/tfjs/index.js';

export interface GptConfig {
  vocab: number;
  context: number;
  width: number;
  layers: number;
  heads: number;
}

export const VARIANTS = {
  fp32: null,
  'fp4-dge-occ': { dge: { k: 5, cap: 3 }, occ: { alpha: 0.99 } },
  'fp4-direct': { dge: false, occ: false },
  'fp4-dge': { dge: { k: 5, cap: 3 }, occ: false },
  'fp4-occ': { dge: false, occ: { alpha: 0.99 } },
} as const;
export type Variant = keyof typeof VARIANTS;

/** LayerNorm over the last axis with tf ops (tfjs-layers' layerNormalization's gradient runs
 *  thousands of tiny kernels per call on the wasm backend). */
class LayerNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  constructor(width: number) {
    this.gamma = tf.variable(tf.ones([width]), true);
    this.beta = tf.variable(tf.zeros([width]), true);
  }
  apply(x: tf.Tensor): tf.Tensor {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), this.gamma), this.beta);
  }
}

interface Block {
  ln1: LayerNorm;
  /** The QKV projection as three layers of width d: per-output-channel weight scales and per-token
   *  activation scales make that the same quantization as one [d, 3d] layer (only the E5M2
   *  gradient's per-tensor scale is taken per third), and tfjs wasm's slices of a fused output are slow. */
  q: tf.layers.Layer;
  k: tf.layers.Layer;
  v: tf.layers.Layer;
  out: tf.layers.Layer;
  ln2: LayerNorm;
  up: tf.layers.Layer;
  down: tf.layers.Layer;
}

export class CharGpt {
  readonly tokenEmbedding: tf.Variable;
  readonly positionEmbedding: tf.Variable;
  readonly blocks: Block[] = [];
  readonly lnFinal: LayerNorm;
  readonly head: tf.layers.Layer;
  private readonly mask: tf.Tensor;

  constructor(readonly config: GptConfig, variant: Variant, seed: number) {
    const { vocab, context, width, heads } = config;
    if (width % heads !== 0) throw new RangeError('width must be a multiple of heads');
    let s = seed * 1000;
    const init = (std: number) => tf.initializers.randomNormal({ mean: 0, stddev: std, seed: ++s });
    const fp4 = VARIANTS[variant];
    const linear = (units: number, inputs: number, std: number, activation?: 'linear') => {
      const common = { units, kernelInitializer: init(std), biasInitializer: 'zeros' as const, activation };
      const layer = fp4 ? fp4layers.fp4Dense({ ...common, ...fp4 }) : tf.layers.dense(common);
      layer.build([null, inputs]);
      return layer;
    };
    const norm = () => new LayerNorm(width);
    this.tokenEmbedding = tf.variable(init(0.02).apply([vocab, width]) as tf.Tensor, true);
    this.positionEmbedding = tf.variable(init(0.02).apply([context, width]) as tf.Tensor, true);
    const residualStd = 0.02 / Math.sqrt(2 * config.layers);
    for (let l = 0; l < config.layers; l++) {
      this.blocks.push({
        ln1: norm(), q: linear(width, width, 0.02), k: linear(width, width, 0.02), v: linear(width, width, 0.02), out: linear(width, width, residualStd),
        ln2: norm(), up: linear(4 * width, width, 0.02), down: linear(width, 4 * width, residualStd),
      });
    }
    this.lnFinal = norm();
    this.head = tf.layers.dense({ units: vocab, kernelInitializer: init(0.02), useBias: false });
    this.head.build([null, width]);
    // −1e9 above the diagonal: each position sees itself and the past.
    this.mask = tf.keep(tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([context, context]), -1, 0)), -1e9));
  }

  variables(): tf.Variable[] {
    const norms = [...this.blocks.flatMap((b) => [b.ln1, b.ln2]), this.lnFinal].flatMap((n) => [n.gamma, n.beta]);
    const linears = [...this.blocks.flatMap((b) => [b.q, b.k, b.v, b.out, b.up, b.down]), this.head]
      .flatMap((l) => l.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
    return [this.tokenEmbedding, this.positionEmbedding, ...norms, ...linears];
  }

  /** Logits [batch, context, vocab] of tokens [batch, context]. */
  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    const { width, heads } = this.config;
    const [batch, context] = tokens.shape;
    const dh = width / heads;
    // Embedding as a one-hot product (tf.gather's gradient needs UnsortedSegmentSum, which stock tfjs wasm lacks).
    const embedded = tf.matMul(tf.oneHot(tokens.reshape([-1]), this.config.vocab), this.tokenEmbedding).reshape([batch, context, width]);
    let x: tf.Tensor = tf.add(embedded, this.positionEmbedding.slice([0, 0], [context, width]));
    const mask = this.mask.slice([0, 0], [context, context]);
    for (const b of this.blocks) {
      const h = b.ln1.apply(x);
      const [q, k, v] = [b.q, b.k, b.v].map((l) => tf.transpose((l.apply(h) as tf.Tensor).reshape([batch, context, heads, dh]), [0, 2, 1, 3]));
      const scores = tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(dh)), mask);
      const att = tf.matMul(tf.softmax(scores), v); // [batch, heads, context, dh]
      const merged = tf.transpose(att, [0, 2, 1, 3]).reshape([batch, context, width]);
      x = tf.add(x, b.out.apply(merged) as tf.Tensor);
      const u = b.up.apply(b.ln2.apply(x)) as tf.Tensor;
      // GELU (tanh form)
      const gelu = tf.mul(tf.mul(0.5, u), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(u, tf.mul(0.044715, tf.pow(u, 3)))))));
      x = tf.add(x, b.down.apply(gelu) as tf.Tensor);
    }
    return this.head.apply(this.lnFinal.apply(x)) as tf.Tensor3D;
  }

  /** Mean cross-entropy (nats per character) of next-character targets. */
  loss(tokens: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
    const logits = this.logits(tokens);
    const vocab = this.config.vocab;
    return tf.losses.softmaxCrossEntropy(tf.oneHot(targets.reshape([-1]), vocab), logits.reshape([-1, vocab])) as tf.Scalar;
  }
}
