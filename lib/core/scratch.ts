// Reused scratch arrays. A fresh typed array costs a page fault per 4 KiB the first time it is
// touched (~12 µs each on the VMs here: a 38 MB im2col matrix is ~110 ms before any arithmetic),
// and the allocator does not hand freed pages back to the next allocation of the same size. Code
// that needs a large temporary for the span of one synchronous call (written, read, done before it
// returns) takes it from a named slot here instead; each slot is one buffer, grown when needed and
// kept. Slots never share memory, so two temporaries alive at once must use different slots.

type ScratchKind = Float32ArrayConstructor | Float64ArrayConstructor | Uint8ArrayConstructor | Uint32ArrayConstructor;

/** Above this many bytes a request gets a fresh array (kept memory stays bounded). */
const SLOT_LIMIT = 128 * 2 ** 20;

const slots = new Map<string, ArrayBuffer>();

/** `length` elements of the named slot's buffer (contents undefined: the caller overwrites them). */
export function scratch<K extends ScratchKind>(slot: string, kind: K, length: number): InstanceType<K> {
  const bytes = length * kind.BYTES_PER_ELEMENT;
  if (bytes > SLOT_LIMIT) return new kind(length) as InstanceType<K>;
  let buffer = slots.get(slot);
  if (buffer === undefined || buffer.byteLength < bytes) {
    buffer = new ArrayBuffer(Math.max(bytes, 64));
    slots.set(slot, buffer);
  }
  return new kind(buffer, 0, length) as InstanceType<K>;
}
