// The model's config.json beside a checkpoint, read before any tensor is planned: some layouts
// cannot tell from a tensor's name alone how its axes are laid out (gpt-oss's experts share their
// names with other MoE models that store them the other way round) and need model_type and the
// model's sizes to decide.

import { join } from 'node:path';
import { SafetensorsError } from './safetensors/header.js';
import { readRegularTextFile } from './safetensors/regular-file.js';

/** A string (matched first, so text inside one is left alone), one of Python's bare numbers
 *  (json.dump writes a float inf or nan as Infinity, -Infinity or NaN, which JSON has not), or a
 *  JSON number. */
const STRING_PYTHON_NUMBER_OR_NUMBER = /"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)|(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
// The markers carry a random tag: a string of the config that looks like one is never taken for one.
const TAG = Math.random().toString(36).slice(2, 10);
const MARK = `\u0000fp4kit-python-number-${TAG}:`;
const NUMBER_MARK = `\u0000fp4kit-number-${TAG}:`;

/** The source text of the numbers JavaScript would write differently (`10000.0` as 10000, which
 *  Python reads back as an int; `1e-05`; an integer beyond 2^53), by the object or array that holds
 *  them and their key: configText writes them back as they were where the value is unchanged, and
 *  an object a layout builds anew (its quantization_config) has none. The top-level object's are
 *  also kept under a symbol, so that a layout's `{ ...config, quantization_config }` carries them
 *  along (JSON.stringify never sees a symbol). */
type Literals = Map<string, string>;
const LITERALS_OF = new WeakMap<object, Literals>();
const LITERALS = Symbol('config.json number literals');

/** config.json's text for a (read and changed) config: JSON, with Python's bare numbers and the
 *  numbers' own spelling back in place. */
export function configText(config: Record<string, unknown>): string {
  const text = JSON.stringify(markLiterals(config), null, 2)
    .replace(new RegExp(`"\\\\u0000fp4kit-python-number-${TAG}:(-?Infinity|NaN)"`, 'g'), '$1')
    .replace(new RegExp(`"\\\\u0000fp4kit-number-${TAG}:(-?\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)"`, 'g'), '$1');
  return `${text}\n`;
}

/** A shallow copy of a config object (or one of its sub-objects) with some keys set: the numbers
 *  it keeps keep their spelling (a layout changing a sub-config's dtype leaves its rope_theta 10000.0). */
export function editedConfig(o: Record<string, unknown>, edits: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...o, ...edits };
  const literals = LITERALS_OF.get(o);
  if (literals !== undefined) LITERALS_OF.set(out, literals);
  return out;
}

/** A copy of `v` in which each number read with a literal of its own (and still of its value) is a marker string. */
function markLiterals(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  const literals = (v as { [LITERALS]?: Literals })[LITERALS] ?? LITERALS_OF.get(v);
  if (literals === undefined && !hasObjectInside(v)) return v;
  const mark = (k: string, x: unknown): unknown => {
    const literal = typeof x === 'number' ? literals?.get(k) : undefined;
    return literal !== undefined && Object.is(Number(literal), x) ? NUMBER_MARK + literal : markLiterals(x);
  };
  if (Array.isArray(v)) return v.map((x, i) => mark(String(i), x));
  const out = Object.create(null) as Record<string, unknown>; // keys are data (__proto__ too)
  for (const [k, x] of Object.entries(v)) out[k] = mark(k, x);
  return out;
}

const hasObjectInside = (v: object) => Object.values(v).some((x) => x !== null && typeof x === 'object');

/** Turn the number markers of a parsed config back into numbers, recording their literals by holder and key. */
function unmarkNumbers(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    const x = o[k];
    if (typeof x === 'string' && x.startsWith(NUMBER_MARK)) {
      const literal = x.slice(NUMBER_MARK.length);
      let literals = LITERALS_OF.get(o);
      if (literals === undefined) LITERALS_OF.set(o, (literals = new Map()));
      literals.set(k, literal);
      o[k] = Number(literal);
    } else {
      unmarkNumbers(x);
    }
  }
  return o;
}

/** A parsed config.json (a JSON object), or null when the checkpoint has none. */
export type ModelConfig = Record<string, unknown> | null;

/** config.json in `dir`, or null when there is none; anything else there (a folder, a FIFO, text that is
 *  not a JSON object) is refused with the file's name rather than read or guessed at. */
export async function readModelConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, 'config.json');
  // Opened without blocking and checked on the open descriptor: a FIFO swapped in after a stat
  // could otherwise hold the run forever.
  const text = await readRegularTextFile(path);
  if (text === null) return null;
  let parsed: unknown;
  let numberMarks = false;
  try {
    // Python's bare numbers stay marker strings for the run (where a number is not finite); a number
    // JavaScript would write otherwise is a number with its literal recorded.
    parsed = JSON.parse(text.replace(STRING_PYTHON_NUMBER_OR_NUMBER, (m: string, bare?: string, num?: string) => {
      if (bare) return JSON.stringify(MARK + bare);
      if (num !== undefined && JSON.stringify(Number(num)) !== num) {
        numberMarks = true;
        return JSON.stringify(NUMBER_MARK + num);
      }
      return m;
    }));
  } catch (err) {
    throw new SafetensorsError(path, `not JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new SafetensorsError(path, 'not a JSON object');
  if (!numberMarks) return parsed as Record<string, unknown>;
  const config = unmarkNumbers(parsed) as Record<string, unknown>;
  const literals = LITERALS_OF.get(config);
  if (literals !== undefined) Object.defineProperty(config, LITERALS, { value: literals, enumerable: true });
  return config;
}
