// binding.gyp (read by node-gyp at npm install) and CMakeLists.txt (cmake-js builds and the
// kernel self-test) describe the same native build twice; this keeps the two in step: the same
// source files per instruction set, the same -m flags and defines, and every native/*.cc in both.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

interface GypTarget { target_name: string; sources?: string[]; cflags_cc?: string[]; conditions?: Array<[string, { sources?: string[] }]> }

function gyp() {
  // gyp is a Python literal: drop '#' comments and it parses as JSON.
  const text = read('binding.gyp').split('\n').map((l) => l.replace(/^\s*#.*$/, '')).join('\n');
  const parsed = JSON.parse(text) as {
    target_defaults: { defines: string[] };
    targets: GypTarget[];
    conditions?: Array<[string, { targets?: GypTarget[] }]>;
  };
  // The instruction-set libraries are targets under one architecture's condition each.
  const targets = [...parsed.targets, ...(parsed.conditions ?? []).flatMap(([, c]) => c.targets ?? [])];
  const isa = new Map<string, { sources: string[]; flags: string[] }>();
  const addon = targets.find((t) => t.target_name === 'fp4kit')!;
  const addonSources = [...(addon.sources ?? []), ...(addon.conditions ?? []).flatMap(([, c]) => c.sources ?? [])];
  for (const t of targets) if (t !== addon) isa.set(t.target_name, { sources: t.sources ?? [], flags: (t.cflags_cc ?? []).filter((f) => f.startsWith('-m')) });
  return { defines: parsed.target_defaults.defines, addonSources, isa };
}

function cmake() {
  const text = read('CMakeLists.txt');
  const vars = new Map<string, string[]>();
  for (const m of text.matchAll(/^set\((\w+)\s+([^)]*)\)/gm)) vars.set(m[1], m[2].split(/\s+/).filter(Boolean));
  const expand = (words: string[]): string[] => words.flatMap((w) => {
    const v = /^\$\{(\w+)\}$/.exec(w);
    return v ? expand(vars.get(v[1]) ?? []) : [w];
  });
  const isa = new Map<string, { sources: string[]; flags: string[] }>();
  for (const m of text.matchAll(/fp4kit_isa_library\((\w+) SOURCES ([^)]*?) FLAGS ([^)]*)\)/g)) {
    isa.set(m[1], { sources: m[2].split(/\s+/).filter(Boolean), flags: expand(m[3].split(/\s+/).filter(Boolean)).filter((f) => f.startsWith('-m')) });
  }
  const addonBlock = /add_library\(\$\{PROJECT_NAME\} SHARED([^)]*)\)/.exec(text)![1];
  const quantize = /set\(FP4KIT_QUANTIZE_SOURCES ([^)]*)\)/.exec(text)![1].split(/\s+/).filter(Boolean);
  const neon = /list\(APPEND FP4KIT_QUANTIZE_SOURCES ([^)]*)\)/.exec(text)![1].split(/\s+/).filter(Boolean);
  const addonSources = [...addonBlock.split(/\s+/).filter((w) => w.startsWith('native/')), ...quantize, ...neon];
  const defines = (/add_definitions\(([^)]*)\)/.exec(text)![1]).split(/\s+/).filter(Boolean).map((d) => d.replace(/^-D/, ''));
  return { defines, addonSources, isa };
}

describe('the two native build descriptions', () => {
  const g = gyp();
  const c = cmake();
  it('build the same addon sources', () => {
    expect([...c.addonSources].sort()).toEqual([...g.addonSources].sort());
  });
  it('build the same instruction-set libraries from the same files with the same -m flags', () => {
    expect([...c.isa.keys()].sort()).toEqual([...g.isa.keys()].sort());
    for (const [name, lib] of g.isa) {
      expect(c.isa.get(name)!.sources.sort(), name).toEqual([...lib.sources].sort());
      expect(c.isa.get(name)!.flags.sort(), name).toEqual([...lib.flags].sort());
    }
  });
  it('use the same defines', () => {
    expect([...c.defines].sort()).toEqual([...g.defines].sort());
  });
  it('between them name every native source file', () => {
    const onDisk = readdirSync(new URL('native/', root)).filter((f) => f.endsWith('.cc')).map((f) => `native/${f}`).sort();
    const named = [...new Set([...g.addonSources, ...[...g.isa.values()].flatMap((l) => l.sources)])].sort();
    expect(named).toEqual(onDisk);
  });
});

// node-gyp is what `npm install` runs on every machine: on AArch64 it must not meet an x86-64
// library (a compiler for AArch64 rejects -mavx2), and the dot-product kernel must build on its
// own flags. Cross-compiled here with Debian's g++-aarch64-linux-gnu (CI installs it).
const crossCompiler = '/usr/bin/aarch64-linux-gnu-g++';
describe('node-gyp for AArch64', () => {
  it('builds the addon from binding.gyp with the cross compiler', () => {
    if (process.env.CI === 'true' && !existsSync(crossCompiler)) throw new Error('CI needs g++-aarch64-linux-gnu for the AArch64 node-gyp build');
    if (!existsSync(crossCompiler)) return;
    const dir = mkdtempSync(join(tmpdir(), 'fp4kit-arm64-'));
    try {
      cpSync(new URL('binding.gyp', root), join(dir, 'binding.gyp'));
      cpSync(new URL('native', root), join(dir, 'native'), { recursive: true });
      symlinkSync(fileURLToPath(new URL('node_modules', root)), join(dir, 'node_modules'));  // binding.gyp asks node-addon-api for its headers
      // The headers of the running Node (as scripts/install-native.cjs points node-gyp at them).
      const prefix = resolve(dirname(process.execPath), '..');
      const env = { ...process.env, CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', LINK: 'aarch64-linux-gnu-g++', AR: 'aarch64-linux-gnu-ar' };
      if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;
      const nodeGyp = fileURLToPath(new URL('node_modules/node-gyp/bin/node-gyp.js', root));
      execFileSync(process.execPath, [nodeGyp, 'rebuild', '--arch=arm64', '-j', '2'], { cwd: dir, env, stdio: 'pipe', maxBuffer: 64 << 20 });
      const addon = readFileSync(join(dir, 'build', 'Release', 'fp4kit.node'));
      // ELF, e_machine 183 = EM_AARCH64.
      expect(addon.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      expect(addon.readUInt16LE(18)).toBe(183);
      expect(existsSync(join(dir, 'build', 'Release', 'fp4kit_neon_dotprod.a'))).toBe(true);
      expect(existsSync(join(dir, 'build', 'Release', 'fp4kit_avx2.a'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
