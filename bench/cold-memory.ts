// How much dearer writing files is when the memory it lands in has been free for a while (on this VM
// the hypervisor takes free memory back after ~2 s: virtio-balloon free page reporting). Writes a
// file's bytes into 20 files in 256 KiB blocks, deletes them, and writes them again either at once
// or after an idle pause; prints the system time of each write. Explains the plan bench's first
// round (bench/README.md, Plan).
//
//   node bench/cold-memory.ts [file] [--pause-ms 10000] [--runs 8]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { 'pause-ms': { type: 'string', default: '10000' }, runs: { type: 'string', default: '8' } },
  allowPositionals: true,
});
const file = positionals[0] ?? path.join(import.meta.dirname, 'data', 'chat-1000000-900.jsonl');
const out = path.join(import.meta.dirname, 'data', 'cold-memory');
const data = fs.readFileSync(file);
const block = Buffer.allocUnsafe(256 * 1024);
const pause = Number(values['pause-ms']);

function writeAll(idleMs: number): void {
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  if (idleMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, idleMs);
  const fds = Array.from({ length: 20 }, (_, k) => fs.openSync(path.join(out, `s${k}`), 'w'));
  const before = process.cpuUsage();
  const t = performance.now();
  for (let pos = 0, k = 0; pos < data.length; pos += block.length, k++) {
    const n = data.copy(block, 0, pos, Math.min(pos + block.length, data.length));
    fs.writeSync(fds[k % fds.length]!, block, 0, n);
  }
  for (const fd of fds) fs.closeSync(fd);
  const cpu = process.cpuUsage(before);
  process.stdout.write(
    `${idleMs > 0 ? `after ${idleMs} ms idle` : 'at once'}: ${((performance.now() - t) / 1000).toFixed(2)} s, system ${(cpu.system / 1e6).toFixed(2)} s\n`,
  );
}

process.stdout.write(`${(data.length / 1e6).toFixed(0)} MB into 20 files\n`);
for (let r = 0; r < Number(values.runs); r++) writeAll(r % 2 === 1 ? pause : 0);
fs.rmSync(out, { recursive: true, force: true });
