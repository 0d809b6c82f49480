// fp4kit's own decode of a quantized checkpoint as one safetensors file: every tensor fp4kit
// quantized, dequantized to float32 in the input tensor's axis order and under its input name.
// This is what a loader's dequantized weights must equal bit for bit (transformers with
// Mxfp4Config(dequantize=True) or CompressedTensorsConfig(dequantize=True)); docs/layouts.md
// shows the check, test/loaders.test.ts runs it for gpt-oss. Written one tensor at a time.

import { join } from 'node:path';
import type { CheckpointSummary } from './quantize-checkpoint.js';
import { readBackValues } from './layouts/index.js';
import { SafetensorsError } from './safetensors/header.js';
import { SafetensorsFile } from './safetensors/read.js';
import { SafetensorsWriter } from './safetensors/write.js';
import { readRegularTextFile } from './safetensors/regular-file.js';

const SUMMARY = 'fp4kit-summary.json';

/** Write fp4kit's decode of every quantized tensor of the output folder `quantizedDir` to `outFile`
 *  (F32, input names and shapes); returns the number of tensors written. */
export async function writeDecodedTensors(quantizedDir: string, outFile: string): Promise<number> {
  const summaryPath = join(quantizedDir, SUMMARY);
  let summary: CheckpointSummary;
  try {
    const text = await readRegularTextFile(summaryPath); // a FIFO there is refused, never waited on
    if (text === null) throw new Error('no such file');
    summary = JSON.parse(text) as CheckpointSummary;
  } catch (err) {
    throw new SafetensorsError(summaryPath, `writeDecodedTensors needs the ${SUMMARY} of an fp4kit output folder (${(err as Error).message})`);
  }
  const quantized = summary.tensors.filter((t) => t.action === 'quantized');
  const writer = await SafetensorsWriter.create(outFile, quantized.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape })));
  const files = new Map<string, SafetensorsFile>();
  try {
    for (const t of quantized) {
      if (!files.has(t.file)) files.set(t.file, await SafetensorsFile.open(join(quantizedDir, t.file)));
      const f = files.get(t.file)!;
      const get = async (name: string) => {
        const info = f.tensor(name);
        if (!info) throw new SafetensorsError(f.path, `tensor ${name} of quantized ${t.name} is missing`);
        return f.read(info);
      };
      const values = await readBackValues(summary.layout, get, t.name, t.format!, t.shape);
      await writer.write(t.name, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    }
    await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    for (const f of files.values()) await f.close();
  }
  return quantized.length;
}
