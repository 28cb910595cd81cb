// The baseline the issue compares against: readline + JSON.parse + a Set of custom_ids, writing
// shards per model with the same limits. Correct on good input, simple, single-threaded.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

interface Open {
  fd: number;
  lines: number;
  bytes: number;
  hash: crypto.Hash;
  pending: string[];
  pendingBytes: number;
}

export async function naivePlan(
  input: string,
  outDir: string,
  limits = { maxLines: 50_000, maxBytes: 500_000_000 },
): Promise<{ valid: number; rejected: number; shards: number }> {
  fs.mkdirSync(outDir, { recursive: true });
  const seen = new Set<string>();
  const open = new Map<string, Open>();
  let shards = 0;
  let valid = 0;
  let rejected = 0;
  const flush = (o: Open): void => {
    const text = o.pending.join('');
    fs.writeSync(o.fd, text);
    o.hash.update(text);
    o.pending = [];
    o.pendingBytes = 0;
  };
  const close = (o: Open): void => {
    flush(o);
    fs.closeSync(o.fd);
    o.hash.digest('hex');
  };
  const rl = readline.createInterface({ input: fs.createReadStream(input), crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    let req: {
      custom_id?: unknown;
      method?: unknown;
      url?: unknown;
      body?: { model?: unknown; stream?: unknown };
    };
    try {
      req = JSON.parse(line) as typeof req;
    } catch {
      rejected++;
      continue;
    }
    const id = req.custom_id;
    if (
      typeof id !== 'string' ||
      id.length === 0 ||
      id.length > 256 ||
      seen.has(id) ||
      req.method !== 'POST' ||
      req.url !== '/v1/chat/completions' ||
      typeof req.body?.model !== 'string' ||
      req.body.stream === true
    ) {
      rejected++;
      continue;
    }
    seen.add(id);
    const key = `${req.body.model}\u0000${String((req.body as { enable_thinking?: unknown }).enable_thinking)}`;
    const bytes = Buffer.byteLength(line) + 1;
    let o = open.get(key);
    if (o && (o.lines + 1 > limits.maxLines || o.bytes + bytes > limits.maxBytes)) {
      close(o);
      o = undefined;
    }
    if (!o) {
      o = {
        fd: fs.openSync(path.join(outDir, `naive-${shards++}.jsonl`), 'w'),
        lines: 0,
        bytes: 0,
        hash: crypto.createHash('sha256'),
        pending: [],
        pendingBytes: 0,
      };
      open.set(key, o);
    }
    o.lines++;
    o.bytes += bytes;
    o.pending.push(line, '\n');
    o.pendingBytes += bytes;
    if (o.pendingBytes > 1 << 20) flush(o);
    valid++;
  }
  for (const o of open.values()) close(o);
  return { valid, rejected, shards };
}

if (import.meta.main) {
  const [input, outDir] = process.argv.slice(2);
  const t = performance.now();
  const r = await naivePlan(input!, outDir!);
  process.stdout.write(`${JSON.stringify({ ...r, ms: Math.round(performance.now() - t) })}\n`);
}
