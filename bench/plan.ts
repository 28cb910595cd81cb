// Plan benchmark: planInput on a generated chat file against `split -l 50000` on the same
// file and a naive readline + JSON.parse + Set planner, measured in the same run (this machine is
// shared and noisy: ratios matter, absolute times are context). Peak RSS of each planner is read
// from its own child process.
//
//   npm run bench:plan                       # 1M lines (~900 MB)
//   npm run bench:plan -- --lines 10000000   # 10M lines (naive skipped unless --naive)
//   options: --line-bytes 900, --rounds 3, --naive, --clean (delete the generated input after)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureChatFile } from './gen-chat.ts';

const DATA = path.join(import.meta.dirname, 'data');

interface Run {
  ms: number;
  rssMB: number;
  detail?: string;
  /** CPU seconds per thread of the planner (main, scan threads). */
  cpu?: string;
}

/** Child mode: run one planner in this process and print {ms, rssMB}. */
async function child(kind: string, input: string, outDir: string): Promise<void> {
  const t = performance.now();
  let detail: string;
  if (kind === 'plan') {
    const { planInputTuned } = await import('../planner/index.ts');
    let cpu = '';
    const r = await planInputTuned(
      {
        input,
        outDir,
        endpoint: '/v1/chat/completions',
        limits: { maxLines: 50_000, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
      },
      {
        cpuReport: ({ main, scan }) => {
          const s = (u: { user: number; system: number }): string =>
            `${(u.user / 1e6).toFixed(2)} user + ${(u.system / 1e6).toFixed(2)} sys`;
          cpu = [`main ${s(main)}`, ...scan.map((u, k) => `scan${k} ${s(u)}`)].join(', ');
        },
      },
    );
    detail = `${r.valid} valid, ${r.rejected} rejected, ${r.shards} shards`;
    process.stdout.write(
      `${JSON.stringify({ ms: performance.now() - t, rssMB: process.resourceUsage().maxRSS / 1024, detail, cpu })}\n`,
    );
    return;
  } else {
    const { naivePlan } = await import('./naive-plan.ts');
    const r = await naivePlan(input, outDir);
    detail = `${r.valid} valid, ${r.rejected} rejected, ${r.shards} shards`;
  }
  const ms = performance.now() - t;
  process.stdout.write(`${JSON.stringify({ ms, rssMB: process.resourceUsage().maxRSS / 1024, detail })}\n`);
}

function runChild(kind: string, input: string, outDir: string): Run {
  fs.rmSync(outDir, { recursive: true, force: true });
  const r = spawnSync(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', import.meta.filename, '--child', kind, input, outDir],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  fs.rmSync(outDir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`${kind} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Run;
}

function runSplit(input: string, outDir: string): Run {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const t = performance.now();
  const r = spawnSync('split', ['-l', '50000', input, path.join(outDir, 'x')]);
  const ms = performance.now() - t;
  fs.rmSync(outDir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`split failed: ${r.stderr.toString()}`);
  return { ms, rssMB: 0 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'boolean' },
      lines: { type: 'string', default: '1000000' },
      'line-bytes': { type: 'string', default: '900' },
      rounds: { type: 'string', default: '3' },
      naive: { type: 'boolean' },
      clean: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: false,
  });
  if (values.child) {
    const [kind, input, outDir] = process.argv.slice(process.argv.indexOf('--child') + 1);
    return child(kind!, input!, outDir!);
  }
  const lines = Number(values.lines);
  const lineBytes = Number(values['line-bytes']);
  const rounds = Number(values.rounds);
  fs.mkdirSync(DATA, { recursive: true });
  const input = path.join(DATA, `chat-${lines}-${lineBytes}.jsonl`);
  ensureChatFile(input, lines, lineBytes);
  const size = fs.statSync(input).size;
  spawnSync('cat', [input], { stdio: ['ignore', 'ignore', 'ignore'] }); // warm the page cache
  const out = path.join(DATA, 'out');
  const splits: number[] = [];
  const plans: Run[] = [];
  for (let r = 0; r < rounds; r++) {
    splits.push(runSplit(input, out).ms);
    plans.push(runChild('plan', input, out));
    process.stdout.write(
      `round ${r + 1}: split ${(splits[r]! / 1000).toFixed(2)} s, plan ${(plans[r]!.ms / 1000).toFixed(2)} s, ${plans[r]!.rssMB.toFixed(0)} MB (${plans[r]!.detail})\n  cpu: ${plans[r]!.cpu ?? '-'}\n`,
    );
  }
  const naive = values.naive || lines <= 1_000_000 ? runChild('naive', input, out) : undefined;
  const split = median(splits);
  const planMs = median(plans.map((p) => p.ms));
  const rss = Math.max(...plans.map((p) => p.rssMB));
  const rows = [
    ['input', `${lines.toLocaleString('en-US')} lines, ${(size / 1e6).toFixed(0)} MB`],
    ['split -l 50000 (median)', `${(split / 1000).toFixed(2)} s`],
    ['planInput (median)', `${(planMs / 1000).toFixed(2)} s, peak RSS ${rss.toFixed(0)} MB`],
    ['plan / split', `${(planMs / split).toFixed(2)}x (target <= 2x)`],
  ];
  if (naive) {
    rows.push([
      'naive readline+JSON.parse+Set',
      `${(naive.ms / 1000).toFixed(2)} s, peak RSS ${naive.rssMB.toFixed(0)} MB`,
    ]);
    rows.push(['naive / plan', `${(naive.ms / planMs).toFixed(2)}x faster (target >= 3x)`]);
  }
  process.stdout.write(`\n${rows.map(([k, v]) => `${k!.padEnd(32)} ${v}`).join('\n')}\n`);
  if (values.clean) fs.rmSync(input, { force: true });
}

await main();
