// Reading one safetensors file through a file handle: the header once, then tensors one at a
// time by positioned reads, so a multi-GB shard is never loaded whole.

import type { FileHandle } from 'node:fs/promises';
import { SafetensorsError, headerLength, parseHeader, type TensorInfo } from './header.js';
import { openRegularFile } from './regular-file.js';
import { describe, isObjectArgument } from '../../core/describe.js';
import { typedArrayName } from '../../core/typed-arrays.js';

export class SafetensorsFile {
  readonly path: string;
  readonly tensors: TensorInfo[];
  readonly metadata: Record<string, string>;
  readonly dataStart: number;
  readonly size: number;
  private handle: FileHandle | null;
  /** Each tensor's byte range as the header gave it: `tensors` is the caller's to change, this is not. */
  readonly #ranges: Map<string, { begin: number; end: number }>;
  /** The header's tensors by name (a Fisher file is looked up once per weight: a linear search
   *  each took seconds for a model of 20k expert tensors). */
  readonly #byName: Map<string, TensorInfo>;

  private constructor(path: string, handle: FileHandle, size: number, tensors: TensorInfo[], metadata: Record<string, string>, dataStart: number) {
    this.path = path;
    this.handle = handle;
    this.size = size;
    this.tensors = tensors;
    this.metadata = metadata;
    this.dataStart = dataStart;
    this.#ranges = new Map(tensors.map((t) => [t.name, { begin: t.begin, end: t.end }]));
    this.#byName = new Map(tensors.map((t) => [t.name, t]));
  }

  static async open(path: string): Promise<SafetensorsFile> {
    // A FIFO, device or folder named like a shard is refused without blocking (regular-file.ts).
    const { handle, stats } = await openRegularFile(path);
    try {
      const { size } = stats;
      const prefix = new Uint8Array(8);
      if (size >= 8) await readExactly(path, handle, prefix, 0);
      const len = headerLength(path, prefix, size);
      const headerBytes = new Uint8Array(len);
      await readExactly(path, handle, headerBytes, 8);
      const header = parseHeader(path, headerBytes, size);
      return new SafetensorsFile(path, handle, size, header.tensors, header.metadata, header.dataStart);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** The header's tensor named `name`. */
  tensor(name: string): TensorInfo | undefined {
    return this.#byName.get(name);
  }

  /**
   * The byte range of `t`, a tensor of this file (one of `tensors`, or a copy naming one with its
   * offsets): a description made up by the caller is refused before anything is allocated or read.
   */
  #rangeOf(fn: string, t: unknown): { name: string; begin: number; end: number } {
    if (!isObjectArgument(t)) throw new TypeError(`${fn}: the tensor must be one of this file's tensors ({ name, begin, end, … }), got ${describe(t)}`);
    const { name, begin, end } = t as Partial<TensorInfo>;
    if (typeof name !== 'string') throw new TypeError(`${fn}: the tensor's name must be a string, got ${describe(name)}`);
    const range = this.#ranges.get(name);
    if (range === undefined) throw new SafetensorsError(this.path, `${fn}: no tensor ${JSON.stringify(name)} in this file`);
    if (begin !== range.begin || end !== range.end) {
      throw new SafetensorsError(this.path, `${fn}: tensor ${JSON.stringify(name)} lies at [${range.begin}, ${range.end}) of the data, not at [${describe(begin)}, ${describe(end)})`);
    }
    return { name, ...range };
  }

  /** Read bytes [offset, offset + out.length) of a tensor's data into `out`. */
  async readInto(t: TensorInfo, out: Uint8Array, offset = 0): Promise<void> {
    const fn = 'readInto';
    const { name, begin, end } = this.#rangeOf(fn, t);
    if (typedArrayName(out) !== 'Uint8Array') throw new TypeError(`${fn}: out must be a Uint8Array, got ${describe(out)}`);
    if (typeof offset !== 'number') throw new TypeError(`${fn}: offset must be a non-negative integer (a Number), got ${describe(offset)}`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + out.length > end - begin) throw new RangeError(`${fn}: read past the end of tensor ${name}`);
    if (!this.handle) throw new SafetensorsError(this.path, 'file is closed');
    await readExactly(this.path, this.handle, out, this.dataStart + begin + offset);
  }

  /** A tensor's bytes in a fresh, 8-byte-aligned buffer (ready for typed-array views). */
  async read(t: TensorInfo): Promise<Uint8Array> {
    const { begin, end } = this.#rangeOf('read', t);
    if (!this.handle) throw new SafetensorsError(this.path, 'file is closed');
    const out = new Uint8Array(new ArrayBuffer(end - begin));
    await this.readInto(t, out);
    return out;
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    if (h) await h.close();
  }
}

async function readExactly(path: string, handle: FileHandle, out: Uint8Array, position: number): Promise<void> {
  // fs reads are capped near 2 GB per call: read large tensors in pieces.
  const STEP = 1 << 30;
  let done = 0;
  while (done < out.length) {
    const want = Math.min(STEP, out.length - done);
    const { bytesRead } = await handle.read(out, done, want, position + done);
    if (bytesRead === 0) throw new SafetensorsError(path, `truncated file: unexpected end at byte ${position + done}`);
    done += bytesRead;
  }
}
