// Streaming safetensors writer. The caller declares every tensor (name, dtype, shape) up front,
// so the header can be written first; then tensor bytes are written one tensor at a time, in the
// declared order, possibly in several pieces, each tensor at its offset. The file appears under its
// final name only after commit() (temp file + fsync + rename, lib/checkpoint/safetensors/atomic-file.ts).

import { SAFETENSORS_DTYPE_BYTES, isKnownDtype } from './dtypes.js';
import { AtomicFile } from './atomic-file.js';
import { holdsLoneSurrogate, MAX_HEADER_BYTES } from './header.js';
import { describe, isArray, isObjectArgument, notOneOf, readFields, readShape } from '../../core/validate.js';
import { byteLengthOf, typedArrayName } from '../../core/typed-arrays.js';

export interface TensorSpec {
  name: string;
  dtype: string;
  shape: number[];
}

export function specByteLength(s: TensorSpec): number {
  return s.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[s.dtype];
}


/**
 * Each tensor's offset in the data: the tensors of the widest element first (8-byte, 4, 2, then
 * 1-byte dtypes), each width in declared order (the safetensors package's serializer also puts
 * wider dtypes first, by name within one). The data starts 8-byte aligned, so every tensor starts
 * at a multiple of its element size and
 * a reader may view it in place (a Float32Array, numpy, a Rust slice) without copying; declared
 * order would put an F32 tensor scale after an odd-length U8 tensor.
 */
export function dataOffsets(specs: readonly TensorSpec[]): number[] {
  const order = specs.map((_, i) => i).sort((a, b) => SAFETENSORS_DTYPE_BYTES[specs[b].dtype] - SAFETENSORS_DTYPE_BYTES[specs[a].dtype] || a - b);
  const offsets = new Array<number>(specs.length);
  let offset = 0;
  for (const i of order) {
    offsets[i] = offset;
    offset += specByteLength(specs[i]);
  }
  return offsets;
}

/** The header bytes (8-byte length + JSON padded with spaces to a multiple of 8). */
export function encodeHeader(specs: TensorSpec[], metadata?: Record<string, string>): Uint8Array {
  // Names are data: a null-prototype object keeps a tensor named __proto__ as a plain entry.
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  for (const [k, v] of Object.entries(metadata ?? {})) {
    if (holdsLoneSurrogate(k) || holdsLoneSurrogate(v)) throw new RangeError(`safetensors writer: metadata ${JSON.stringify(k)} holds a lone UTF-16 surrogate, which UTF-8 cannot store`);
  }
  const names = new Set<string>();
  for (const s of specs) {
    if (!isKnownDtype(s.dtype)) throw new RangeError(`safetensors writer: unknown dtype ${JSON.stringify(s.dtype)} for tensor ${JSON.stringify(s.name)}`);
    if (holdsLoneSurrogate(s.name)) throw new RangeError(`safetensors writer: tensor name ${JSON.stringify(s.name)} holds a lone UTF-16 surrogate, which UTF-8 cannot store (it would be written as another name)`);
    if (s.name === '__metadata__') throw new RangeError('safetensors writer: "__metadata__" is reserved by the format for metadata; it cannot name a tensor');
    if (names.has(s.name)) throw new RangeError(`safetensors writer: duplicate tensor name ${JSON.stringify(s.name)}`);
    names.add(s.name);
  }
  const offsets = dataOffsets(specs);
  specs.forEach((s, i) => {
    header[s.name] = { dtype: s.dtype, shape: s.shape, data_offsets: [offsets[i], offsets[i] + specByteLength(s)] };
  });
  const json = new TextEncoder().encode(JSON.stringify(header));
  if (json.length > MAX_HEADER_BYTES) throw new RangeError(`safetensors writer: the header would take ${json.length} bytes; readers refuse headers above ${MAX_HEADER_BYTES}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

export class SafetensorsWriter {
  private readonly file: AtomicFile;
  private readonly specs: TensorSpec[];
  /** Where each tensor's bytes start in the file (after the header; dataOffsets). */
  private readonly starts: number[];
  private index = 0;
  private remaining: number;

  private constructor(file: AtomicFile, specs: TensorSpec[], headerBytes: number) {
    this.file = file;
    this.specs = specs;
    this.starts = dataOffsets(specs).map((o) => headerBytes + o);
    this.remaining = specs.length > 0 ? specByteLength(specs[0]) : 0;
  }

  static async create(finalPath: string, specs: TensorSpec[], metadata?: Record<string, string>): Promise<SafetensorsWriter> {
    const args = checkWriteArguments('SafetensorsWriter.create', finalPath, specs, metadata, false); // read once: the writer keeps the copies
    const header = encodeHeader(args.tensors, args.metadata);
    const file = await AtomicFile.create(finalPath);
    try {
      await file.write(header);
    } catch (err) {
      await file.abort();
      throw err;
    }
    return new SafetensorsWriter(file, args.tensors, header.length);
  }

  get tempPath(): string {
    return this.file.tempPath;
  }

  get bytesWritten(): number {
    return this.file.bytesWritten;
  }

  /** The next tensor to write, or undefined when all are written. */
  get next(): TensorSpec | undefined {
    this.skipEmpty();
    return this.specs[this.index];
  }

  /** Move past finished (and empty) tensors, stopping at `name` if it is next. */
  private skipEmpty(name?: string): void {
    while (this.index < this.specs.length && this.remaining === 0 && this.specs[this.index].name !== name) {
      this.index++;
      this.remaining = this.index < this.specs.length ? specByteLength(this.specs[this.index]) : 0;
    }
  }

  /** Write the next bytes of tensor `name`, which must be the next declared tensor. */
  async write(name: string, bytes: Uint8Array): Promise<void> {
    if (typeof name !== 'string') throw new TypeError(`SafetensorsWriter.write: name must be a string, got ${describe(name)}`);
    if (typedArrayName(bytes) !== 'Uint8Array') throw new TypeError(`SafetensorsWriter.write: bytes must be a Uint8Array, got ${describe(bytes)}`);
    this.skipEmpty(name);
    const spec = this.specs[this.index];
    if (!spec || spec.name !== name) throw new Error(`safetensors writer: expected ${spec ? spec.name : 'no more tensors'}, got ${name}`);
    if (bytes.length > this.remaining) throw new Error(`safetensors writer: ${name} gets ${bytes.length} bytes but only ${this.remaining} remain`);
    await this.file.writeAt(bytes, this.starts[this.index] + specByteLength(spec) - this.remaining);
    this.remaining -= bytes.length;
  }

  /** Check every tensor was written in full, fsync and close (still under the temporary name). */
  async finish(): Promise<void> {
    this.skipEmpty();
    if (this.index < this.specs.length) throw new Error(`safetensors writer: ${this.specs[this.index].name} was not written`);
    await this.file.finish();
  }

  /** Rename the finished file into place. */
  async publish(): Promise<void> {
    await this.file.publish();
  }

  async commit(): Promise<void> {
    await this.finish();
    await this.publish();
  }

  async abort(): Promise<void> {
    await this.file.abort();
  }
}

/** Write a whole file from in-memory tensors (tests, small outputs). */
export async function writeSafetensors(
  finalPath: string,
  tensors: Array<TensorSpec & { data: Uint8Array }>,
  metadata?: Record<string, string>,
): Promise<void> {
  const args = checkWriteArguments('writeSafetensors', finalPath, tensors, metadata, true); // read once: the write uses the copies
  const w = await SafetensorsWriter.create(finalPath, args.tensors, args.metadata);
  try {
    for (const t of args.tensors) await w.write(t.name, t.data);
    await w.commit();
  } catch (err) {
    await w.abort();
    throw err;
  }
}

/**
 * The most tensors one file can declare: each header entry takes at least ~50 bytes of JSON, and
 * readers refuse headers above MAX_HEADER_BYTES (100,000,000 bytes). Longer lists (a Proxy claiming 2^32 − 1
 * entries) are refused before they are read.
 */
const MAX_TENSORS = 1 << 21;

/**
 * Argument checks with errors that name the function, the argument and what was expected; every
 * caller object read once (by index, never through the array's own methods) into plain copies, so
 * what was checked is what is written (README "Arguments and errors"). `withData`: each tensor
 * carries its bytes (writeSafetensors), or only its spec (SafetensorsWriter.create).
 */
function checkWriteArguments<D extends boolean>(
  fn: string, finalPath: unknown, tensors: unknown, metadata: unknown, withData: D,
): { tensors: Array<D extends true ? TensorSpec & { data: Uint8Array } : TensorSpec>; metadata?: Record<string, string> } {
  const fields = withData ? '{ name, dtype, shape, data }' : '{ name, dtype, shape }';
  if (typeof finalPath !== 'string') throw new TypeError(`${fn}: finalPath must be a non-empty string, got ${describe(finalPath)}`);
  if (finalPath === '') throw new RangeError(`${fn}: finalPath must be a non-empty string, got ""`);
  if (!isArray(tensors)) throw new TypeError(`${fn}: tensors must be an array of ${fields}, got ${describe(tensors)}`);
  const count = tensors.length;
  if (count > MAX_TENSORS) throw new RangeError(`${fn}: tensors lists ${count} tensors; a safetensors file holds at most ${MAX_TENSORS} (its header is at most ${MAX_HEADER_BYTES} bytes)`);
  const specs: Array<TensorSpec & { data?: Uint8Array }> = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const t: unknown = tensors[i];
    const at = `${fn}: tensors[${i}]`;
    if (!isObjectArgument(t)) throw new TypeError(`${at} must be an object ${fields}, got ${describe(t)}`);
    const { name, dtype, shape: shapeField, data } = readFields(t, ['name', 'dtype', 'shape', 'data']);
    if (typeof name !== 'string') throw new TypeError(`${at}.name must be a string, got ${describe(name)}`);
    if (typeof dtype !== 'string' || !isKnownDtype(dtype)) throw notOneOf('string', dtype, `${at}.dtype must be a safetensors dtype (F32, BF16, U8, …), got ${describe(dtype)}`);
    const shape = readShape(fn, shapeField, `tensors[${i}].shape`, true);
    if (shape === undefined) throw new TypeError(`${at}.shape must be an array of non-negative integers, got undefined`);
    const want = specByteLength({ name, dtype, shape });
    total += want;
    // Offsets are written as JSON numbers and computed in doubles: past 2^53 they would be rounded.
    if (!Number.isSafeInteger(total)) throw new RangeError(`${at}: ${dtype} × [${shape.join(', ')}] takes the data past 2^53 bytes`);
    if (!withData) {
      specs.push({ name, dtype, shape });
      continue;
    }
    if (typedArrayName(data) !== 'Uint8Array') throw new TypeError(`${at}.data must be a Uint8Array, got ${describe(data)}`);
    const bytes = data as Uint8Array;
    if (byteLengthOf(bytes) !== want) throw new RangeError(`${at}.data must hold ${want} bytes for ${dtype} × [${shape.join(', ')}], got ${byteLengthOf(bytes)}`);
    specs.push({ name, dtype, shape, data: bytes });
  }
  type Out = D extends true ? TensorSpec & { data: Uint8Array } : TensorSpec;
  if (metadata === undefined) return { tensors: specs as Out[] };
  if (!isObjectArgument(metadata)) throw new TypeError(`${fn}: metadata must be an object of strings, got ${describe(metadata)}`);
  const copy: Record<string, string> = Object.create(null) as Record<string, string>; // '__proto__' is a key like any other
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new TypeError(`${fn}: metadata[${JSON.stringify(k)}] must be a string, got ${describe(v)}`);
    copy[k] = v;
  }
  return { tensors: specs as Out[], metadata: copy };
}
