// Which tensors of a checkpoint get quantized. Default: 2-D float weights whose name ends in
// ".weight" (Linear layers), except embeddings, norms, output heads and MoE routers, which models
// are most sensitive to and which loaders expect unquantized (layouts/module-roles.ts tells them by
// name; a layout may bring its own default: gpt-oss quantizes its MoE expert weights only). `only`
// narrows the choice to names matching a regex (and lifts the default name rules); `skip` removes
// names matching a regex. Everything else is copied through unchanged.

import { QUANTIZABLE_DTYPES } from './safetensors/dtypes.js';
import { describe } from '../core/validate.js';
import { isNormEmbeddingOrHead, isRouter } from './layouts/module-roles.js';

export interface SelectionRules {
  only?: RegExp;
  skip?: RegExp;
  /** A layout's own default choice (the gpt-oss layout: MoE expert weights only), used instead of
   *  the 2-D `.weight` rule when there is no `only`. */
  defaults?: (name: string, shape: number[]) => string | null;
}

/** Why the default rule keeps a 2-D `.weight` unquantized, or null. */
function keptByDefault(name: string): string | null {
  if (isNormEmbeddingOrHead(name)) return 'embedding, norm or lm_head (kept by default)';
  if (isRouter(name)) return 'an MoE router (kept by default: serving engines run routers unquantized)';
  return null;
}

/** null when the tensor is quantized, else why it is copied through. */
export function copyReason(name: string, dtype: string, shape: number[], rules: SelectionRules): string | null {
  if (!QUANTIZABLE_DTYPES.has(dtype)) return `dtype ${dtype} is not F32/F16/BF16`;
  if (rules.skip && rules.skip.test(name)) return 'matches --skip';
  if (rules.only) {
    if (!rules.only.test(name)) return 'does not match --only';
    if (shape.length < 2) return 'fewer than 2 dimensions';
    return null;
  }
  if (rules.defaults) return rules.defaults(name, shape);
  if (shape.length !== 2) return 'not a 2-D weight';
  if (!name.endsWith('.weight')) return 'name does not end in .weight';
  return keptByDefault(name);
}

/** Parse a user regex, with the flag name in the error. */
export function parseRegex(flag: string, source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw new RangeError(`${flag}: invalid regular expression ${JSON.stringify(source)} (${(err as Error).message})`);
  }
}

/** An --only / --skip rule as given (a RegExp or its source), as the run uses it. */
export function selectionRegex(flag: string, r: RegExp | string | undefined): RegExp | undefined {
  if (r === undefined) return undefined;
  if (typeof r === 'string') return parseRegex(flag, r);
  if (!(r instanceof RegExp) && Object.prototype.toString.call(r) !== '[object RegExp]') {
    throw new TypeError(`${flag} must be a RegExp or a string, got ${describe(r)}`);
  }
  // A copy without the g and y flags: with them, test() carries lastIndex from one name to the
  // next and the same name would match or not depending on the name before it.
  return new RegExp(r.source, r.flags.replace(/[gy]/g, ''));
}
