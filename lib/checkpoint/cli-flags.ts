// Flags given twice on a command line. Node's parseArgs keeps the last value without a word, so
// `--skip a --skip b` skipped only b and `--only q_proj --only k_proj` quantized only k_proj.

/** The message for the first flag with a value that is given twice (booleans may repeat), or null. */
export function repeatedFlag(tokens: ReadonlyArray<{ kind: string; name?: string; value?: string }>): string | null {
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== 'option' || t.value === undefined || t.name === undefined) continue;
    if (seen.has(t.name)) {
      const hint = t.name === 'only' || t.name === 'skip' ? ` (one regex matches several names: --${t.name} 'a|b')` : '';
      return `--${t.name} given twice; give it once${hint}`;
    }
    seen.add(t.name);
  }
  return null;
}
