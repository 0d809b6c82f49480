// What the browser suites share: Debian's Chromium (headless, driven by playwright-core) and a
// local HTTP server for a fixed set of files (the bundled page, fp4kit's .wasm, tfjs's .wasm).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === 'true') throw new Error(`CI needs Chromium at ${CHROMIUM} (apt-get install chromium)`);

/** URL path → [file on disk, content type, extra response headers]. */
export type SiteFiles = Record<string, [string, string] | [string, string, Record<string, string>]>;

export interface Site {
  origin: string;
  close(): void;
}

/** Serves `files` on 127.0.0.1 at a free port (404 for anything else); `onRequest` sees every URL asked for. */
export async function serveFiles(files: SiteFiles, onRequest?: (url: string) => void): Promise<Site> {
  const server = createServer(async (req, res) => {
    onRequest?.(req.url ?? '');
    const f = files[req.url ?? ''];
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': f[1], ...f[2] }).end(await readFile(f[0]));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { origin: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, close: () => server.close() };
}

/** Headless Chromium with nothing that would reach the network on its own. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
