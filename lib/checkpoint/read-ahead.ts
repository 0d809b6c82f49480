// Reading a shard's tensors ahead: the next quantized tensor's bytes load while the current one is
// quantized, into recycled buffers (a long run makes no tensor-sized garbage).
import type { SafetensorsFile } from './safetensors/read.js';
import type { PlannedTensor } from './plan.js';

/** Recycled 8-byte-aligned byte buffers, handed out as views of the requested length. They are
 *  SharedArrayBuffers so that quantizeAsync's native job reads them in place instead of taking a
 *  snapshot copy (lib/core/quantize-async.ts); nothing else touches a buffer while a job runs. */
export class BufferPool {
  private free: SharedArrayBuffer[] = [];
  take(bytes: number): Uint8Array {
    const i = this.free.findIndex((b) => b.byteLength >= bytes);
    const buf = i >= 0 ? this.free.splice(i, 1)[0] : new SharedArrayBuffer(bytes);
    return new Uint8Array(buf, 0, bytes);
  }
  give(view: Uint8Array): void {
    this.free.push(view.buffer as SharedArrayBuffer);
    if (this.free.length > 3) this.free.sort((a, b) => b.byteLength - a.byteLength).pop(); // keep the three largest
  }
}

/** The bytes of a shard's quantized tensors in plan order, each read while the one before is quantized. */
export class ReadAhead {
  private reads = new Map<number, Promise<Uint8Array>>();
  constructor(private shard: SafetensorsFile, private plan: PlannedTensor[], private pool: BufferPool) {}

  /** The bytes of plan[i] (a tensor to quantize); starts reading the next one. */
  async take(i: number): Promise<Uint8Array> {
    this.start(i);
    const bytes = await this.reads.get(i)!;
    this.reads.delete(i);
    this.start(i + 1);
    return bytes;
  }

  private start(i: number): void {
    for (let j = i; j < this.plan.length; j++) {
      if (!this.plan[j].quantize) continue;
      if (!this.reads.has(j)) {
        const info = this.plan[j].info;
        const view = this.pool.take(info.end - info.begin);
        const pending = this.shard.readInto(info, view).then(() => view);
        pending.catch(() => {}); // a failure is reported when the tensor is awaited, not as an unhandled rejection
        this.reads.set(j, pending);
      }
      return;
    }
  }
}
