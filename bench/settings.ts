// How the benchmarks read their settings (sizes, repetitions, thread counts): a flag
// `--name=value` (`--name` alone means 1) or the environment variable FP4KIT_BENCH_NAME (upper
// case, '-' as '_'), the flag first, else the bench's default. The flags are copied into the
// environment when this module loads, so the child processes a bench starts (one per thread
// count, say) read the same settings.
//
//   npm run bench:fp8-product -- --shapes=64x512x512 --budget=0.2
//   FP4KIT_BENCH_SHAPES=64x512x512 FP4KIT_BENCH_BUDGET=0.2 npm run bench:fp8-product   (the same)

const envName = (name: string) => `FP4KIT_BENCH_${name.toUpperCase().replace(/-/g, '_')}`;

// The flags given, and the settings a bench read: a flag no bench reads (a misspelling) is said
// at exit rather than ignored in silence.
const given = new Set<string>();
const read = new Set<string>();
for (const a of process.argv.slice(2)) {
  const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(a);
  if (m) {
    process.env[envName(m[1])] = m[2] ?? '1';
    given.add(m[1]);
  }
}
process.on('exit', () => {
  const unread = [...given].filter((name) => !read.has(name));
  if (unread.length > 0) process.stderr.write(`note: this bench has no setting ${unread.map((n) => `--${n}`).join(', ')}: ignored\n`);
});

/** The setting's text, or undefined when neither the flag nor the variable is given. */
export function setting(name: string): string | undefined {
  read.add(name);
  return process.env[envName(name)];
}

/** A positive number (seconds, a fraction of something). */
export function numberSetting(name: string, fallback: number): number {
  const text = setting(name);
  const v = text === undefined ? fallback : Number(text);
  if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`--${name} / ${envName(name)} must be a positive number, got ${text}`);
  return v;
}

/** A positive integer (a size, a count). */
export function integerSetting(name: string, fallback: number): number {
  const v = numberSetting(name, fallback);
  if (!Number.isInteger(v)) throw new RangeError(`--${name} / ${envName(name)} must be a positive integer, got ${setting(name)}`);
  return v;
}

/** A comma-separated list (empty items dropped). */
export function listSetting(name: string, fallback: string): string[] {
  return (setting(name) ?? fallback).split(',').map((v) => v.trim()).filter(Boolean);
}

/** On or off: anything but 0 and false is on. */
export function flagSetting(name: string, fallback: boolean): boolean {
  const v = setting(name);
  return v === undefined ? fallback : v !== '0' && v !== 'false';
}
