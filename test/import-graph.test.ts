// The module graph of lib/ has no circles (issue 9): a module never needs, even for a type, a
// module that needs it back. Read from the import statements of every lib/ file.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect, it } from 'vitest';

const lib = resolve(__dirname, '..', 'lib');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) out.push(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')));
  for (const m of text.matchAll(/^import\s+'(\.[^']+)'/gm)) out.push(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')));
  return out;
}

it('lib/ has no import circles', () => {
  const graph = new Map(files(lib).map((f) => [f, imports(f)]));
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...stack.slice(stack.indexOf(f)), f].map((p) => relative(lib, p)).join(' → '));
      return;
    }
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) visit(g);
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f);
  expect(cycles).toEqual([]);
});
