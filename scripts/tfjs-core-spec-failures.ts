// Writes test/fixtures/tfjs-core-spec-failures.json: the tfjs-core specs that fail on fp4kit's tfjs
// backends, each with the stock base backend's failure. Runs test/tfjs-core-suite.test.ts in record
// mode on fp4kit, fp4kit-cpu and tfjs's own wasm and cpu backends, and refuses (exit 1, nothing
// written) if a spec fails on an fp4kit backend but passes on its base.
//
// Run: node --import tsx scripts/tfjs-core-spec-failures.ts
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PAIRS: Array<[fp4kit: string, base: string]> = [['fp4kit', 'wasm'], ['fp4kit-cpu', 'cpu']];

interface Assertion { ancestorTitles: string[]; title: string; status: string; failureMessages?: string[] }

/** Spec name (file > describes > it, describeWithFlags' backend and flags left out) → first failure line, for one backend. */
function run(backend: string): Map<string, string | null> {
  const out = join(mkdtempSync(join(tmpdir(), 'tfjs-specs-')), 'report.json');
  const r = spawnSync('npx', ['vitest', 'run', 'test/tfjs-core-suite.test.ts', '--reporter=json', `--outputFile=${out}`], {
    env: { ...process.env, FP4KIT_SPEC_SUITE_RECORD: '1', FP4KIT_SPEC_SUITE_BACKENDS: backend }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  // Status 1 is failing specs (expected here); anything else, or no report, is vitest itself failing.
  if ((r.status !== 0 && r.status !== 1) || !existsSync(out)) throw new Error(`vitest on ${backend} ended with ${r.status} and ${existsSync(out) ? 'a' : 'no'} report`);
  const report = JSON.parse(readFileSync(out, 'utf8')) as { testResults: Array<{ assertionResults: Assertion[] }> };
  const specs = new Map<string, string | null>();
  for (const result of report.testResults) {
    for (const a of result.assertionResults) {
      if (a.ancestorTitles[0] !== `tfjs-core spec suite on ${backend}`) continue;
      // ancestors: the suite, the spec file, the describeWithFlags title "<name> <backend> <flags>", nested describes.
      const [, file, describeTitle, ...rest] = a.ancestorTitles;
      const titles = describeTitle === undefined ? [] : [describeTitle.replace(new RegExp(` ${backend} \\{.*\\}$`), ''), ...rest];
      const name = [file, ...titles, a.title].join(' > ');
      specs.set(name, a.status === 'failed' ? (a.failureMessages?.[0] ?? '').split('\n')[0].slice(0, 200) : null);
    }
  }
  return specs;
}

const failures: Record<string, Record<string, string>> = {};
let refused = false;
for (const [ours, base] of PAIRS) {
  const mine = run(ours);
  const stock = run(base);
  failures[ours] = {};
  for (const [name, failure] of mine) {
    if (failure === null) continue;
    const stockFailure = stock.get(name);
    if (stockFailure === undefined || stockFailure === null) {
      console.error(`${ours}: fails where ${base} passes: ${name}\n  ${failure}`);
      refused = true;
    } else failures[ours][name] = `${base}: ${stockFailure}`;
  }
  console.log(`${ours}: ${mine.size} specs, ${Object.keys(failures[ours]).length} fail (as on ${base}); ${base}: ${[...stock.values()].filter((f) => f !== null).length} fail`);
}
if (refused) process.exit(1);
const target = new URL('../test/fixtures/tfjs-core-spec-failures.json', import.meta.url);
const body = { about: 'tfjs-core 4.22 specs that fail on fp4kit\'s tfjs backends, each with its stock base backend\'s own failure (scripts/tfjs-core-spec-failures.ts)', failures };
writeFileSync(`${target.pathname}.tmp`, `${JSON.stringify(body, null, 1)}\n`);
renameSync(`${target.pathname}.tmp`, target.pathname);
