// What an output layout is: how one quantized tensor becomes named safetensors tensors, and what
// the loader of that layout expects in config.json (or a side file) to recognise the checkpoint.

import type { QuantizedTensor } from '../../core/quantize.js';
import type { FgmpTensor } from '../../fgmp/quantize.js';
import type { TensorSpec } from '../safetensors/write.js';
import type { ScaleRuleName } from '../../core/formats.js';
import type { ModelConfig } from '../model-config.js';

export type LayoutName = 'compressed-tensors' | 'modelopt' | 'gpt-oss' | 'fp4kit';
export type QuantFormat = QuantizedTensor['format'] | 'fgmp';

/** Reads one stored tensor's bytes by its stored name. */
export type TensorBytes = (name: string) => Promise<Uint8Array>;

export interface ConfigContext {
  format: QuantFormat;
  /** Names of the input tensors that were quantized (e.g. "model.layers.0.mlp.up_proj.weight"). */
  quantized: string[];
  /** Module names of 2-D ".weight" tensors left unquantized (for ignore / exclude lists). */
  unquantizedModules: string[];
  /** The input config.json, or null when there is none. */
  config: Record<string, unknown> | null;
}

export interface LayoutFiles {
  /** Replaces config.json when set (the input's config with a quantization section). */
  config?: Record<string, unknown>;
  /** Other files to write beside the weights (name → contents). */
  extra: Record<string, string>;
}

export interface Layout {
  readonly name: LayoutName;
  readonly formats: readonly QuantFormat[];
  /** Why this tensor cannot be stored in this layout (it is then copied through), or null. Throws when
   *  the tensor was selected but its role (which axis is its input axis) cannot be determined. `config`
   *  is the model's config.json (null when there is none). */
  unsupported(name: string, shape: number[], format: QuantFormat, config: ModelConfig): string | null;
  /** Which tensors this layout quantizes when no --only is given (replaces the default rule of
   *  lib/checkpoint/tensor-selection.ts): null to quantize, else why the tensor is copied. */
  defaultSelection?(name: string, shape: number[]): string | null;
  /** True when the stored tensor is [..., in, out] and the layout's loader blocks along `in`: the
   *  quantizer swaps the last two axes first, and `plan` receives the swapped (blocked) shape. Decided
   *  from the name (after `unsupported` accepted the tensor), never from the shape. */
  transposedForBlocking?(name: string): boolean;
  /** Fused modules (q/k/v, gate/up) must share one NVFP4 tensor scale (lib/checkpoint/layouts/fused-modules.ts). */
  readonly sharedFusedScales?: boolean;
  /** Its loaders load all of an MoE layer's experts into one fused MoE with one quantization (vLLM's
   *  FusedMoE), so they are quantized all or none. */
  readonly loadsExpertsAsOneMoe?: boolean;
  /** NVFP4 tensor (decode) scale to use for a tensor with this amax, if the layout needs a special one. */
  tensorScale?(amax: number): number;
  /** The output tensors for one quantized input tensor of the blocked `shape` (the input shape, or its
   *  last two axes swapped when transposedForBlocking); `fp4Blocks` is known in advance for fgmp. */
  plan(name: string, shape: number[], format: QuantFormat, fp4Blocks: number): TensorSpec[];
  /** Bytes of the planned tensors, in plan order. */
  encode(name: string, q: QuantizedTensor | FgmpTensor): Uint8Array[];
  /** The inverse of encode: the quantized tensor `name` (input name) rebuilt from the stored tensors
   *  that `get` returns by name. `shape` is the blocked shape (as plan received it). */
  decode(get: TensorBytes, name: string, format: QuantFormat, shape: number[], scaleRule?: 'floor' | 'ceil'): Promise<QuantizedTensor | FgmpTensor>;
  /** safetensors __metadata__ entries for one output file holding these quantized tensors. */
  metadata?(entries: Array<{ name: string; shape: number[]; format: QuantFormat; scaleRule?: ScaleRuleName }>): Record<string, string>;
  files(ctx: ConfigContext): LayoutFiles;
}

/** A float32 scalar as little-endian bytes. */
export function f32Bytes(v: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setFloat32(0, v, true);
  return out;
}

/** A little-endian float32 scalar from its stored bytes. */
export function f32From(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getFloat32(0, true);
}

/** "a.b.weight" → "a.b" (the module that owns the weight). */
export function moduleOf(tensorName: string): string {
  return tensorName.endsWith('.weight') ? tensorName.slice(0, -'.weight'.length) : tensorName;
}
