// Fault injection for CLI child processes (node --import tsx --import test/helpers/fs-faults.mjs):
// the moments and file systems a test cannot otherwise reach on purpose. FP4KIT_FAULT picks one:
//   kill-between-renames  SIGKILL right after the previous output is moved aside (<out>.old-…),
//                         before the staging folder takes its name: the one instant <out> is absent
//   kill-after-publish    SIGKILL right after the staging folder is renamed to <out>, before the
//                         moved-aside previous output is removed
//   hang-writes           the 4th file write and every later one never completes, as on a hung
//                         network file system (a ref'ed timer keeps the process alive, as the
//                         pending I/O would)
//   zero-writes           every file write reports 0 bytes written (a file system that takes nothing)
//   full-disk             the 4th file write and every later one fails with ENOSPC, as Node reports
//                         it for a file handle (no path on the error)
//   slow-writes           every file write waits 30 ms first (a slow disk), so a signal sent while
//                         the run is under way lands mid-run on every backend, however fast
//   endless-reads         a read at the end of a file returns a full buffer of 'x' instead of 0
//                         bytes, as a file appended to as fast as it is read (up to 64 MiB in all)
import fs from 'node:fs';
import { open } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';

const fault = process.env.FP4KIT_FAULT;

if (fault === 'kill-between-renames' || fault === 'kill-after-publish') {
  const renameSync = fs.renameSync;
  fs.renameSync = function faultyRenameSync(from, to) {
    renameSync(from, to);
    const movedAside = /\.old-[^/]*$/.test(String(to));
    const published = /\.tmp-[^/]*$/.test(String(from)) && !/\.tmp-[^/]*$/.test(String(to));
    if ((fault === 'kill-between-renames' && movedAside) || (fault === 'kill-after-publish' && published)) {
      process.kill(process.pid, 'SIGKILL');
    }
  };
  syncBuiltinESMExports(); // `import { renameSync } from 'node:fs'` sees the wrapper too
}

if (fault === 'endless-reads') {
  const probe = await open(process.execPath, 'r');
  const FileHandle = Object.getPrototypeOf(probe);
  await probe.close();
  const read = FileHandle.read;
  let extra = 0;
  FileHandle.read = async function endlessRead(buffer, offset, length, position) {
    const r = await read.call(this, buffer, offset, length, position);
    if (r.bytesRead === 0 && ArrayBuffer.isView(buffer) && typeof length === 'number' && length > 0 && extra < 64 << 20) {
      buffer.fill(120, offset, offset + length);
      extra += length;
      return { bytesRead: length, buffer };
    }
    return r;
  };
}

if (fault === 'hang-writes' || fault === 'zero-writes' || fault === 'slow-writes' || fault === 'full-disk') {
  const probe = await open(process.execPath, 'r');
  const FileHandle = Object.getPrototypeOf(probe);
  await probe.close();
  const write = FileHandle.write;
  let calls = 0;
  FileHandle.write = function faultyWrite(buffer, ...rest) {
    if (fault === 'zero-writes') return Promise.resolve({ bytesWritten: 0, buffer });
    if (fault === 'slow-writes') return new Promise((resolve) => setTimeout(resolve, 30)).then(() => write.call(this, buffer, ...rest));
    calls++;
    if (calls <= 3) return write.call(this, buffer, ...rest);
    if (fault === 'full-disk') {
      return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { errno: -28, code: 'ENOSPC', syscall: 'write' }));
    }
    if (calls === 4) {
      setInterval(() => {}, 1 << 30);
      process.stderr.write('fp4kit-test: file writes hang from now on\n');
    }
    return new Promise(() => {});
  };
}
