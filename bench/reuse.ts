// Reuse benchmark: how much the answer store's lookups cost the plan. The same generated chat
// input is planned without reuse and with reuse against a store holding answers for every other
// line (50% reused), in the same run, each in a child process whose peak RSS is read. Without
// reuse every line is validated, packed and written; with it every line is also parsed, hashed
// (canonical form) and looked up, and the reused half is written to reused.jsonl instead of a shard.
//
//   npm run bench:reuse                      # 1M lines of ~300 bytes
//   npm run bench:reuse -- --lines 2000000   # options: --line-bytes 300, --rounds 3, --clean
//
// The store is filled once (the collection's side of the cost, timed apart) and kept under
// bench/data/ for later runs of the same size.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { providerScope, requestKeyOfLine } from '../common/request-key.ts';
import { LocalAnswerStore } from '../storage/local-answers.ts';
import { ensureChatFile } from './gen-chat.ts';

const DATA = path.join(import.meta.dirname, 'data');
const SCOPE = providerScope('emulator', undefined);
const LIMITS = { maxLines: 50_000, maxBytes: 500_000_000, maxLineBytes: 6_000_000 };

interface Run {
  ms: number;
  rssMB: number;
  detail: string;
}

/** Child mode: one plan, with or without the store; prints {ms, rssMB, detail}. */
async function child(kind: string, input: string, outDir: string, storeDir: string): Promise<void> {
  const { planInput } = await import('../planner/index.ts');
  const { ReusedLines } = await import('../storage/reused-lines.ts');
  fs.mkdirSync(outDir, { recursive: true });
  const t = performance.now();
  // With reuse, the plan includes merging the store's indexes (what a worker's plan does first).
  const reuse =
    kind === 'reuse'
      ? new ReusedLines({
          store: await new LocalAnswerStore({ root: storeDir }).prepare(undefined),
          scope: SCOPE,
          dir: outDir,
        })
      : undefined;
  const r = await planInput({
    input,
    outDir,
    endpoint: '/v1/chat/completions',
    limits: LIMITS,
    ...(reuse ? { reuse } : {}),
  });
  const ms = performance.now() - t;
  const detail = `${r.valid} valid, ${r.reused?.lines ?? 0} reused, ${r.shards} shards`;
  process.stdout.write(`${JSON.stringify({ ms, rssMB: process.resourceUsage().maxRSS / 1024, detail })}\n`);
}

function runChild(kind: string, input: string, outDir: string, storeDir: string): Run {
  fs.rmSync(outDir, { recursive: true, force: true });
  const r = spawnSync(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', import.meta.filename, '--child', kind, input, outDir, storeDir],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  fs.rmSync(outDir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`${kind} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Run;
}

/** Stores an answer for every other line of `input` (as collection would), once per store folder. */
async function fillStore(input: string, storeDir: string): Promise<number | undefined> {
  const done = path.join(storeDir, 'bench-filled');
  if (fs.existsSync(done)) return undefined;
  fs.rmSync(storeDir, { recursive: true, force: true });
  const store = new LocalAnswerStore({ root: storeDir, maxBytes: 1e12 });
  // A writer per 25,000 answers, as collection writes one per unit of up to 50,000 lines.
  let w = store.writer('bench-fill');
  const t = performance.now();
  let i = 0;
  for await (const line of readline.createInterface({ input: fs.createReadStream(input) })) {
    if (i++ % 2 !== 0) continue;
    if (i % 50_000 === 1 && i > 1) {
      w.close();
      w = store.writer('bench-fill');
    }
    const id = `req-${i - 1}`;
    const result = Buffer.from(
      JSON.stringify({
        id: `batch_req_${i}`,
        custom_id: id,
        response: {
          status_code: 200,
          body: {
            choices: [{ message: { role: 'assistant', content: `answer ${i}` } }],
            usage: { total_tokens: 90 },
          },
        },
        error: null,
      }),
    );
    w.put(requestKeyOfLine(SCOPE, line), { model: 'qwen-plus', usage: [60, 30, 90], customId: id, result });
  }
  w.close();
  fs.writeFileSync(done, '');
  return performance.now() - t;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'boolean' },
      lines: { type: 'string', default: '1000000' },
      'line-bytes': { type: 'string', default: '300' },
      rounds: { type: 'string', default: '3' },
      clean: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: false,
  });
  if (values.child) {
    const [kind, input, outDir, storeDir] = process.argv.slice(process.argv.indexOf('--child') + 1);
    return child(kind!, input!, outDir!, storeDir!);
  }
  const lines = Number(values.lines);
  const lineBytes = Number(values['line-bytes']);
  const rounds = Number(values.rounds);
  fs.mkdirSync(DATA, { recursive: true });
  const input = path.join(DATA, `chat-${lines}-${lineBytes}.jsonl`);
  ensureChatFile(input, lines, lineBytes);
  const storeDir = path.join(DATA, `answers-${lines}-${lineBytes}`);
  const fillMs = await fillStore(input, storeDir);
  if (fillMs !== undefined)
    process.stdout.write(
      `stored ${Math.ceil(lines / 2).toLocaleString('en-US')} answers in ${(fillMs / 1000).toFixed(1)} s (${((fillMs * 1000) / Math.ceil(lines / 2)).toFixed(1)} µs each)\n`,
    );
  spawnSync('cat', [input], { stdio: ['ignore', 'ignore', 'ignore'] }); // warm the page cache
  const out = path.join(DATA, 'out-reuse');
  const plain: Run[] = [];
  const reuse: Run[] = [];
  for (let r = 0; r < rounds; r++) {
    plain.push(runChild('plain', input, out, storeDir));
    reuse.push(runChild('reuse', input, out, storeDir));
    process.stdout.write(
      `round ${r + 1}: without reuse ${(plain[r]!.ms / 1000).toFixed(2)} s ${plain[r]!.rssMB.toFixed(0)} MB (${plain[r]!.detail}); with reuse ${(reuse[r]!.ms / 1000).toFixed(2)} s ${reuse[r]!.rssMB.toFixed(0)} MB (${reuse[r]!.detail})\n`,
    );
  }
  const p = median(plain.map((x) => x.ms));
  const q = median(reuse.map((x) => x.ms));
  const rows = [
    [
      'input',
      `${lines.toLocaleString('en-US')} lines, ${(fs.statSync(input).size / 1e6).toFixed(0)} MB, 50% in the store`,
    ],
    [
      'plan without reuse (median)',
      `${(p / 1000).toFixed(2)} s, peak RSS ${Math.max(...plain.map((x) => x.rssMB)).toFixed(0)} MB`,
    ],
    [
      'plan with reuse (median)',
      `${(q / 1000).toFixed(2)} s, peak RSS ${Math.max(...reuse.map((x) => x.rssMB)).toFixed(0)} MB`,
    ],
    ['with / without', `${(q / p).toFixed(2)}x (${(((q - p) * 1000) / lines).toFixed(1)} µs a line)`],
  ];
  process.stdout.write(`\n${rows.map(([k, v]) => `${k!.padEnd(30)} ${v}`).join('\n')}\n`);
  if (values.clean) {
    fs.rmSync(input, { force: true });
    fs.rmSync(storeDir, { recursive: true, force: true });
  }
}

await main();
