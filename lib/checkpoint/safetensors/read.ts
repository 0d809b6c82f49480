// Reading one safetensors file through a file handle: the header once, then tensors one at a
// time by positioned reads, so a multi-GB shard is never loaded whole.

import type { FileHandle } from 'node:fs/promises';
import { SafetensorsError, headerLength, parseHeader, type TensorInfo } from './header.js';
import { openRegularFile } from './regular-file.js';

export class SafetensorsFile {
  readonly path: string;
  readonly tensors: TensorInfo[];
  readonly metadata: Record<string, string>;
  readonly dataStart: number;
  readonly size: number;
  private handle: FileHandle | null;

  private constructor(path: string, handle: FileHandle, size: number, tensors: TensorInfo[], metadata: Record<string, string>, dataStart: number) {
    this.path = path;
    this.handle = handle;
    this.size = size;
    this.tensors = tensors;
    this.metadata = metadata;
    this.dataStart = dataStart;
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

  tensor(name: string): TensorInfo | undefined {
    return this.tensors.find((t) => t.name === name);
  }

  /** Read bytes [offset, offset + out.length) of a tensor's data into `out`. */
  async readInto(t: TensorInfo, out: Uint8Array, offset = 0): Promise<void> {
    if (!this.handle) throw new SafetensorsError(this.path, 'file is closed');
    if (offset < 0 || offset + out.length > t.end - t.begin) throw new RangeError(`read past the end of tensor ${t.name}`);
    await readExactly(this.path, this.handle, out, this.dataStart + t.begin + offset);
  }

  /** A tensor's bytes in a fresh, 8-byte-aligned buffer (ready for typed-array views). */
  async read(t: TensorInfo): Promise<Uint8Array> {
    const out = new Uint8Array(new ArrayBuffer(t.end - t.begin));
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
