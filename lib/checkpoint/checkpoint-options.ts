// quantizeCheckpoint's options, read once and checked before anything is opened or written: every
// option is read one time (a getter or Proxy is asked once; the run uses the copy), each value is
// checked for its type, its range and whether it applies to the chosen format and layout, and a
// name that is not an option (a typo such as `layuot`) is refused rather than silently ignored —
// a run with an ignored option would publish a checkpoint the caller did not ask for.

import { QUANT_FORMAT_NAMES } from '../core/formats.js';
import type { QuantFormat } from './layouts/types.js';
import { checkFraction, checkSeed, checkTensorScale, describe, isObjectArgument, notOneOf, readFields } from '../core/validate.js';
import { LAYOUT_NAMES, layoutByName, type LayoutName } from './layouts/index.js';
import { selectionRegex } from './tensor-selection.js';
import type { CheckpointOptions } from './summary.js';

const OPTION_NAMES = [
  'format', 'layout', 'only', 'skip', 'rounding', 'seed', 'scaleRule', 'fisher', 'fp4Fraction', 'inputScale', 'measureError', 'overwrite',
] as const;

/** The CLI flag of each option (`fp4kit quantize`), for its messages. */
const FLAGS = {
  format: '--format', layout: '--layout', rounding: '--rounding', seed: '--seed', scaleRule: '--scale-rule',
  fisher: '--fisher', fp4Fraction: '--fp4-fraction', inputScale: '--input-scale',
} as const;

/** Options that are arguments of quantizeCheckpoint, which a caller may put in the options by mistake. */
const ARGUMENTS: Record<string, string> = { onProgress: 'fourth', signal: 'fifth' };

/** The options checked, in a plain object of their own (only/skip as RegExps without g and y). */
export interface CheckedCheckpointOptions extends CheckpointOptions {
  layout: LayoutName;
  only?: RegExp;
  skip?: RegExp;
}

/** A path argument: a non-empty string (a TypeError for another kind of value, a RangeError for ''). */
export function checkPath(fn: string, argument: string, v: unknown): string {
  if (typeof v !== 'string') throw new TypeError(`${fn}: ${argument} must be a path (a non-empty string), got ${describe(v)}`);
  if (v === '') throw new RangeError(`${fn}: ${argument} must be a path (a non-empty string), got ""`);
  return v;
}

function checkBoolean(fn: string, name: string, v: unknown): boolean | undefined {
  if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`${fn}: options.${name} must be a boolean, got ${describe(v)}`);
  return v;
}

/**
 * An option that does not apply to the format or layout (scaleRule with nvfp4, fp4Fraction without
 * fgmp, stochastic rounding with fgmp, an inputScale without the modelopt layout, a Fisher file
 * without fgmp) is refused: the caller asked for something the checkpoint would silently lack, as
 * quantize() refuses them. A seed without stochastic rounding is refused by the CLI only (the code
 * API ignores it, as quantize() does). `strict` (the CLI): messages name the flags.
 */
export function checkCheckpointOptions(fn: string, options: unknown, strict = false): CheckedCheckpointOptions {
  if (!isObjectArgument(options)) {
    throw new TypeError(`${fn}: options must be an object { format, layout?, … }, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if ((OPTION_NAMES as readonly string[]).includes(key)) continue;
    if (Object.hasOwn(ARGUMENTS, key)) throw new TypeError(`${fn}: ${key} is the ${ARGUMENTS[key]} argument of ${fn}, not an option`);
    throw new RangeError(`${fn}: unknown option ${JSON.stringify(key)}; the options are ${OPTION_NAMES.join(', ')}`);
  }
  const o = readFields(options, OPTION_NAMES);
  // How an option is named in a message: as the code API spells it, or as the CLI's flag.
  const N = (option: keyof typeof FLAGS): string => (strict ? FLAGS[option] : `options.${option}`);
  if (typeof o.format !== 'string' || !(QUANT_FORMAT_NAMES as readonly string[]).includes(o.format)) {
    throw notOneOf('string', o.format, `${fn}: ${N('format')} must be one of ${QUANT_FORMAT_NAMES.join(', ')}, got ${describe(o.format)}`);
  }
  const format = o.format as QuantFormat;
  const layout = (o.layout === undefined ? 'fp4kit' : o.layout) as LayoutName;
  if (typeof layout !== 'string' || !(LAYOUT_NAMES as readonly string[]).includes(layout)) {
    throw notOneOf('string', layout, `${fn}: ${N('layout')} must be one of ${LAYOUT_NAMES.join(', ')}, got ${describe(layout)}`);
  }
  const formats = layoutByName(layout).formats;
  if (!formats.includes(format)) throw new RangeError(`${fn}: the ${layout} layout holds ${formats.join(', ')}; not ${format}`);
  const mx = format !== 'nvfp4' && format !== 'fgmp';
  // An option that does not apply: refused (a seed without stochastic rounding by the CLI only).
  const notFor = (option: keyof typeof FLAGS, applies: boolean, to: string, codeApiToo = true) => {
    if ((strict || codeApiToo) && !applies) throw new RangeError(`${fn}: ${N(option)} applies to ${to} only`);
  };
  if (o.rounding !== undefined && o.rounding !== 'nearest' && o.rounding !== 'stochastic') {
    throw notOneOf('string', o.rounding, `${fn}: ${N('rounding')} must be 'nearest' or 'stochastic', got ${describe(o.rounding)}`);
  }
  notFor('rounding', o.rounding !== 'stochastic' || format !== 'fgmp', 'the block formats (fgmp rounds to nearest)');
  if (o.seed !== undefined) {
    checkSeed(fn, N('seed'), o.seed);
    notFor('seed', o.rounding === 'stochastic', `${N('rounding')} stochastic`, false);
  }
  if (o.scaleRule !== undefined) {
    if (o.scaleRule !== 'floor' && o.scaleRule !== 'ceil') throw notOneOf('string', o.scaleRule, `${fn}: ${N('scaleRule')} must be 'floor' or 'ceil', got ${describe(o.scaleRule)}`);
    notFor('scaleRule', mx, 'the MX formats');
  }
  if (o.fisher !== undefined) {
    if (typeof o.fisher !== 'string') throw new TypeError(`${fn}: ${N('fisher')} must be the path of a safetensors file, got ${describe(o.fisher)}`);
    if (o.fisher === '') throw new RangeError(`${fn}: ${N('fisher')} must be the path of a safetensors file, got ""`);
    // Refused by the code API too: the caller asked for Fisher-weighted blocks and would get none.
    if (format !== 'fgmp') throw new RangeError(`${fn}: ${N('fisher')} applies to the fgmp format only`);
  }
  if (o.fp4Fraction !== undefined) {
    checkFraction(fn, N('fp4Fraction'), o.fp4Fraction);
    notFor('fp4Fraction', format === 'fgmp', 'the fgmp format');
  }
  let inputScale: number | undefined;
  if (o.inputScale !== undefined) {
    // Stored as a float32 input_scale: it must be one (finite, normal, > 0) after the rounding. The
    // value is kept as given (the layout rounds it when it writes it): a distributed run's key
    // hashes the options, and must not change with a version that rounds earlier.
    checkTensorScale(fn, o.inputScale, N('inputScale'));
    inputScale = o.inputScale as number;
    if (layout !== 'modelopt') throw new RangeError(`${fn}: ${N('inputScale')} applies to the modelopt layout only (its input_scale)`);
  }
  return {
    format, layout,
    only: selectionRegex('--only', o.only as RegExp | string | undefined),
    skip: selectionRegex('--skip', o.skip as RegExp | string | undefined),
    rounding: o.rounding as CheckpointOptions['rounding'], seed: o.seed as number | undefined, scaleRule: o.scaleRule as CheckpointOptions['scaleRule'],
    fisher: o.fisher as string | undefined, fp4Fraction: o.fp4Fraction as number | undefined, inputScale,
    measureError: checkBoolean(fn, 'measureError', o.measureError), overwrite: checkBoolean(fn, 'overwrite', o.overwrite),
  };
}
