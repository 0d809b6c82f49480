// The kernel tables checked without Node (scripts/native-selftest.sh): every SIMD table of this
// CPU against the scalar kernels, and the NEON table cross-compiled for AArch64 and run under qemu
// (CI installs g++-aarch64-linux-gnu and qemu-user; elsewhere that half runs when they exist).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';

const haveCross = ['/usr/bin/aarch64-linux-gnu-g++', '/usr/bin/qemu-aarch64'].every(existsSync);
const haveX86Emulator = process.arch === 'x64' && existsSync('/usr/bin/qemu-x86_64');

it('every SIMD kernel table equals the scalar kernels, NEON included when it can be built', () => {
  if (process.env.CI === 'true' && !haveCross) throw new Error('CI needs g++-aarch64-linux-gnu and qemu-user for the NEON self-test');
  const output = execFileSync('scripts/native-selftest.sh', { encoding: 'utf8' });
  if (process.arch === 'x64') expect(output).toMatch(/avx2: compared with the scalar kernels/);
  if (haveCross) expect(output).toMatch(/neon: compared with the scalar kernels/);
  // The FP4 tile kernels (x86's three; NEON under qemu) were compared with the scalar one.
  const fp4Runs = output.match(/^fp4 tiles: [1-9]\d* products of [1-9] SIMD kernel/gm)?.length ?? 0;
  expect(fp4Runs).toBe((process.arch === 'x64' ? 1 : 0) + (haveCross ? 1 : 0));
  // Under qemu (its default CPU has the dot-product extension) both NEON kernels were compared.
  if (haveCross && process.arch === 'x64') expect(output).toMatch(/^fp4 tiles: [1-9]\d* products of 2 SIMD kernel/m);
  // An exception in a worker's range reaches the caller (x86 and AArch64 builds alike).
  expect(output.match(/^thread pool: exceptions of \d+ threads' ranges reach the caller$/gm)?.length ?? 0).toBe((process.arch === 'x64' ? 1 : 0) + (haveCross ? 1 : 0));
  expect(output).not.toMatch(/FAIL/);
  expect(output.match(/^0 failures$/gm)?.length ?? 0).toBeGreaterThan(0);
}, 300_000);

// The addon is one file for every x86-64 CPU: code outside the dispatched kernels must run on any of
// them. A namespace-scope AVX-512 constant (quantize_avx512.cc) was initialised with an AVX-512
// instruction when the addon loaded, so on CPUs without AVX-512 the process died with SIGILL. Under
// qemu-x86_64, as a Haswell (AVX2) and a Nehalem (SSE4.2: the scalar kernels), the addon loads,
// dispatch picks the level that CPU has, and every output byte equals this CPU's.
it.runIf(process.arch === 'x64')('the addon loads and runs on x86-64 CPUs without AVX-512 or AVX2 (emulated), with the same bytes', () => {
  if (process.env.CI === 'true' && !haveX86Emulator) throw new Error('CI needs qemu-user (qemu-x86_64) for the emulated-CPU test');
  if (!haveX86Emulator) return;
  const probe = (prefix: string[]) => execFileSync(prefix[0], [...prefix.slice(1), process.execPath, '--import', 'tsx', 'test/helpers/emulated-cpu-probe.mts'], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 240_000,
  }).trim().split(' ');
  const [, here] = probe(['env']);
  expect(probe(['qemu-x86_64', '-cpu', 'Haswell'])).toEqual(['avx2', here]);
  expect(probe(['qemu-x86_64', '-cpu', 'Nehalem'])).toEqual(['scalar', here]);
}, 600_000);
