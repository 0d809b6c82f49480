#!/usr/bin/env node
// `npm install` hook: load a prebuild from prebuilds/ or build the addon with node-gyp.
// node-gyp downloads Node's headers unless told where they are; a machine without that network
// (or a fresh HOME without ~/.npmrc's nodedir) would then silently fall back to wasm. The running
// Node ships its own headers under <prefix>/include/node (official tarballs, nvm, Debian/NodeSource
// packages): point node-gyp there when nothing else is configured. N-API is ABI-stable, so the
// headers of the running Node are the right ones.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const env = { ...process.env };
if (!env.npm_config_nodedir) {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;
}

// node-gyp-build keeps an existing build/Release/fp4kit.node when it loads, even if native/ has
// changed since (a checkout that pulled new sources, then `npm ci`): rebuild when any native
// source or the build description is newer than the built addon.
const root = path.resolve(__dirname, '..');
const built = path.join(root, 'build', 'Release', 'fp4kit.node');
if (fs.existsSync(built)) {
  const builtAt = fs.statSync(built).mtimeMs;
  const sources = ['binding.gyp', ...fs.readdirSync(path.join(root, 'native')).map((f) => path.join('native', f))];
  if (sources.some((f) => fs.statSync(path.join(root, f)).mtimeMs > builtAt)) fs.rmSync(path.join(root, 'build'), { recursive: true, force: true });
}
const bin = require.resolve('node-gyp-build/bin.js');
const r = spawnSync(process.execPath, [bin], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
