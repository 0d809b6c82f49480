// The model's config.json beside a checkpoint, read before any tensor is planned: some layouts
// cannot tell from a tensor's name alone how its axes are laid out (gpt-oss's experts share their
// names with other MoE models that store them the other way round) and need model_type and the
// model's sizes to decide.

import { join } from 'node:path';
import { SafetensorsError } from './safetensors/header.js';
import { readRegularTextFile } from './safetensors/regular-file.js';

/** Python's json module, which transformers writes config.json with, writes a float inf or nan as a
 *  bare Infinity, -Infinity or NaN, which JSON has not. Such a value is read as a marker string
 *  (strings are matched first, so text inside one is left alone) and written back bare by
 *  configText: the rest of the run sees a string where the value is not a finite number. */
const STRING_OR_PYTHON_NUMBER = /"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)/g;
const MARK = '\u0000fp4kit-python-number:';

/** config.json's text for a (read and changed) config: JSON, with Python's bare numbers back in place. */
export function configText(config: Record<string, unknown>): string {
  return `${JSON.stringify(config, null, 2).replace(/"\\u0000fp4kit-python-number:(-?Infinity|NaN)"/g, '$1')}\n`;
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
  try {
    parsed = JSON.parse(text.replace(STRING_OR_PYTHON_NUMBER, (m: string, bare: string | undefined) => (bare ? JSON.stringify(MARK + bare) : m)));
  } catch (err) {
    throw new SafetensorsError(path, `not JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new SafetensorsError(path, 'not a JSON object');
  return parsed as Record<string, unknown>;
}
