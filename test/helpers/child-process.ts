// Runs a test body in a fresh Node process, so that a crash (abort, segfault) or a hang fails the
// one test instead of killing or stalling the test runner.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const LIB = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));
const DATA = fileURLToPath(new URL('./data.ts', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/lib/index.js', import.meta.url));

export interface ChildOptions {
  timeoutMs?: number;
  /** Caps the child's address space (ulimit -v, in KiB): native allocations beyond it fail. The
   *  child then loads the built library (dist/, `npm run build:ts`) with plain Node and has no
   *  `gaussian`: tsx's esbuild service does not start under such a cap. It runs the regular addon
   *  build even in a sanitizer run (see below). */
  addressSpaceKiB?: number;
  /** Runs the regular addon build without the sanitizer even in a sanitizer run: for a body that
   *  measures the process's paging (ASan's allocator and shadow memory fault pages of their own). */
  withoutSanitizer?: boolean;
}

export interface ChildResult { status: number | null; signal: NodeJS.Signals | null; out: string }

/** Runs an ES module body with `fp4` (the library on `backend`), `gaussian`, `same(a, b)` (bitwise
 *  equality of two typed arrays), `check(ok, what)` (prints FAILED and sets a failing exit code),
 *  `detach(buffer)`, `threadFaults()` (the calling thread's minor page faults so far, from
 *  /proc/thread-self/stat: the JavaScript thread's own, not V8's or libuv's helpers'; the process's
 *  where there is no /proc) and gc(). */
export function runInChild(backend: string, body: string, options: ChildOptions = {}): ChildResult {
  const capped = options.addressSpaceKiB !== undefined;
  const code = `
    import * as fp4 from ${JSON.stringify(capped ? DIST : LIB)};
    import { readFileSync as readStatFile } from 'node:fs';
    ${capped ? '' : `import { gaussian } from ${JSON.stringify(DATA)};`}
    fp4.setBackend(${JSON.stringify(backend)});
    const same = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
    const check = (ok, what) => { if (!ok) { console.error('FAILED: ' + what); process.exitCode = 1; } };
    const detach = (buf) => structuredClone(buf, { transfer: [buf] });
    // Field 10 of /proc/<tid>/stat (minflt); fields 3 on follow the ') ' that closes the name.
    // Without /proc (macOS), the whole process's count.
    const threadFaults = () => {
      let s;
      try { s = readStatFile('/proc/thread-self/stat', 'utf8'); } catch { return process.resourceUsage().minorPageFault; }
      return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[7]);
    };
    ${body}
  `;
  const args = ['--expose-gc', ...(capped ? [] : ['--import', 'tsx']), '--input-type=module', '-e', code];
  const env = { ...process.env };
  if (capped || options.withoutSanitizer) {
    // Without the sanitizer build: ASan reserves terabytes of shadow memory at start, which no
    // address-space cap allows (the CI's ASan run would abort here with "Failed to mmap").
    for (const name of ['LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'FP4KIT_NATIVE_BUILD']) delete env[name];
  }
  const spawnOptions = { encoding: 'utf8' as const, timeout: options.timeoutMs ?? 60_000, env };
  const r = capped
    ? spawnSync('/bin/sh', ['-c', `ulimit -v ${options.addressSpaceKiB} && exec "$0" "$@"`, process.execPath, ...args], spawnOptions)
    : spawnSync(process.execPath, args, spawnOptions);
  return { status: r.status, signal: r.signal, out: `${r.stdout}\n${r.stderr}${r.error ? `\n${r.error.message}` : ''}` };
}

/** The child ended by itself with status 0 and reported no failed check. */
export function expectClean(r: ChildResult): void {
  expect(r.signal, r.out).toBeNull();
  expect(r.status, r.out).toBe(0);
  expect(r.out).not.toMatch(/FAILED/);
}
