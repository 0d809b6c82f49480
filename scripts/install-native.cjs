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
const bin = require.resolve('node-gyp-build/bin.js');
const r = spawnSync(process.execPath, [bin], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
