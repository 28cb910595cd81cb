// `batchpilot run` as people use it: the same command twice, Ctrl-C once and twice, SIGKILL, a pipe
// that closes, two at once, and mistakes caught before any server starts. Real processes in their
// own process group, an emulator over HTTP whose counters say what was bought.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import {
  startEmulator,
  type EmulatorStats,
  type FaultSettings,
  type RunningEmulator,
} from '../../emulator/index.ts';
import { readJsonl, writeChatInput } from '../support/harness.ts';
import { BIN, cliEnv, processesMentioning, startCli } from '../support/cli-process.ts';

const LINES = 300;
// Three shards of 100 lines; at 40 ms a line a batch runs ~4 s, long enough to interrupt.
const JOB_ARGS = ['--max-lines', '100', '--poll-interval', '300ms'];
const FAULTS: FaultSettings = { seed: 3, validatingMs: 100, perLineMs: 40, finalizingMs: 100 };
/**
 * Batches whose lines make no progress until let go, so an interrupt always meets them running; the
 * test lets them go as soon as the first cancel has reached the provider.
 */
const HELD: FaultSettings = { ...FAULTS, perLineMs: 3_600_000 };

describe('batchpilot run, interrupted and repeated', () => {
  let emulator: RunningEmulator;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const setFaults = async (f: FaultSettings) => {
    const res = await fetch(emulator.url.replace(/\/v1$/, '/_emulator/faults'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(f),
    });
    expect(res.ok).toBe(true);
  };
  const stats = async (): Promise<EmulatorStats> =>
    (await fetch(emulator.url.replace(/\/v1$/, '/_emulator/stats'))).json() as Promise<EmulatorStats>;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-run-'));
    emulator = await startEmulator({
      port: 0,
      dataDir: path.join(dir, '.emulator-state'),
      faults: FAULTS,
    });
    writeChatInput(dir, 'in.jsonl', LINES);
    env = cliEnv({
      BATCHPILOT_PROVIDER: 'emulator',
      BATCHPILOT_BASE_URL: emulator.url,
      BATCHPILOT_WORKFLOW_BUNDLE: inject('workflowBundlePath'),
      // Every test here sends the same input: without this, later runs would reuse earlier answers
      // and buy nothing to interrupt. Reuse has its own test at the end, with a store of its own.
      BATCHPILOT_ANSWERS_DIR: 'off',
    });
  });
  afterAll(async () => {
    await emulator.close();
  });

  const run = (out: string, extra: string[] = [], more: NodeJS.ProcessEnv = {}) =>
    startCli(['run', 'in.jsonl', '--out', out, ...JOB_ARGS, ...extra], {
      cwd: dir,
      env: { ...env, ...more },
    });
  const runSync = (args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], { cwd: dir, env, encoding: 'utf8', timeout: 240_000 });
  const idsIn = (out: string, file: string) =>
    readJsonl<{ custom_id: string }>(path.join(dir, out, file)).map((r) => r.custom_id);
  /** Every input line answered exactly once, in input order. */
  const expectAllAnswered = (out: string) => {
    expect(idsIn(out, 'results.jsonl')).toEqual(Array.from({ length: LINES }, (_, i) => `req-${i}`));
    expect(idsIn(out, 'errors.jsonl')).toEqual([]);
  };
  const serverOf = (out: string) => path.join(dir, out, '.batchpilot', 'run', 'temporal.db');

  it('the same command twice buys nothing the second time, with or without --id', async () => {
    for (const extra of [[], ['--id', 'fixedid']]) {
      const out = `twice-${extra.length}`;
      const first = await run(out, extra).exit;
      expect(first.code).toBe(0);
      const bought = (await stats()).batchesCreated;
      const again = run(out, [...extra, '--format', 'csv']);
      expect((await again.exit).code, again.stderr()).toBe(0);
      expect(again.stderr()).toContain('already finished');
      // CSV without a server: the finished job's results, written from the folder.
      expect(again.stdout()).toContain(`results.csv (${LINES} rows)`);
      expect(fs.readFileSync(path.join(dir, out, 'results.csv'), 'utf8')).toMatch(/^custom_id,status_code,/);
      expect(again.stderr()).not.toContain('embedded Temporal dev server');
      expect((await stats()).batchesCreated).toBe(bought);
      expectAllAnswered(out);
    }
  });

  it('Ctrl-C cancels the batches, writes the outputs and exits 130; the same command finishes the job', async () => {
    const out = 'ctrl-c';
    const p = run(out);
    await p.waitFor(/started job (\S+)/);
    const id = /started job (\S+)/.exec(p.stderr())![1]!;
    // Interrupt once a batch is running at the provider.
    const created = (await stats()).batchesCreated;
    for (let i = 0; i < 600 && (await stats()).batchesCreated === created; i++) await sleep(100);
    // However slow this machine, the batch is still running when Ctrl-C arrives.
    await setFaults(HELD);
    const before = await stats();
    try {
      p.signalGroup('SIGINT');
      const cancels = async () => (await stats()).requests.cancel ?? 0;
      for (let i = 0; i < 600 && (await cancels()) <= (before.requests.cancel ?? 0); i++) await sleep(100);
    } finally {
      await setFaults(FAULTS);
    }
    const end = await p.exit;
    expect(end.code, p.stderr()).toBe(130);
    expect(p.stderr()).toContain(`cancelling job ${id}`);
    expect(p.stderr()).toContain(`resume it with: batchpilot run in.jsonl --out ${out} --id ${id}`);
    const summary = JSON.parse(fs.readFileSync(path.join(dir, out, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ workflowId: id, status: 'cancelled' });
    expect((await stats()).requests.cancel ?? 0).toBeGreaterThan(before.requests.cancel ?? 0);
    expect(processesMentioning(serverOf(out))).toEqual([]);

    const resumed = run(out);
    expect((await resumed.exit).code, resumed.stderr()).toBe(0);
    expect(resumed.stderr()).toContain(`resumed job ${id}`);
    expectAllAnswered(out);
    // No batch was made twice for one input file, and the cancelled lines went again.
    expect(Object.values((await stats()).batchesByInputFile).every((n) => n === 1)).toBe(true);
    const final = JSON.parse(fs.readFileSync(path.join(dir, out, 'summary.json'), 'utf8'));
    expect(final).toMatchObject({ workflowId: id, status: 'completed', lines: { succeeded: LINES } });
  });

  it('a second Ctrl-C detaches at once and says how to resume; nothing is left running', async () => {
    const out = 'detach';
    const p = run(out);
    await p.waitFor(/started job/);
    const created = (await stats()).batchesCreated;
    for (let i = 0; i < 600 && (await stats()).batchesCreated === created; i++) await sleep(100);
    p.signalGroup('SIGINT');
    await p.waitFor(/cancelling job/);
    p.signalGroup('SIGINT');
    const end = await p.exit;
    expect(end.code).toBe(130);
    expect(p.stderr()).toContain(`Resume it with:\n  batchpilot run in.jsonl --out ${out}`);
    await waitUntil(() => processesMentioning(serverOf(out)).length === 0);

    const resumed = run(out);
    expect((await resumed.exit).code, resumed.stderr()).toBe(0);
    expectAllAnswered(out);
  });

  it('SIGKILL of run leaves no server behind, and the same command collects what was bought', async () => {
    const out = 'killed';
    const p = run(out);
    await p.waitFor(/started job/);
    const created = (await stats()).batchesCreated;
    for (let i = 0; i < 600 && (await stats()).batchesCreated < created + 3; i++) await sleep(100);
    p.child.kill('SIGKILL');
    await p.exit;
    await waitUntil(() => processesMentioning(serverOf(out)).length === 0);
    const bought = (await stats()).batchesCreated;
    expect(bought).toBe(created + 3);

    const resumed = run(out);
    expect((await resumed.exit).code, resumed.stderr()).toBe(0);
    expectAllAnswered(out);
    // The three batches were collected, not bought again.
    expect((await stats()).batchesCreated).toBe(bought);
  });

  it('a reader that goes away (run | head -1) does not orphan the embedded server', async () => {
    const out = 'piped';
    // Not spawnSync: the emulator answers from this very process, which must keep running.
    const pipeline = spawn(
      'bash',
      ['-c', `"${process.execPath}" "${BIN}" run in.jsonl --out ${out} ${JOB_ARGS.join(' ')} | head -1`],
      { cwd: dir, env, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let stdout = '';
    pipeline.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((resolve) => pipeline.once('exit', resolve));
    expect(code).toBe(0);
    expect(stdout.split('\n').filter(Boolean)).toHaveLength(1);
    await waitUntil(() => processesMentioning(serverOf(out)).length === 0);
    // run went on after the pipe closed and finished the job.
    expectAllAnswered(out);
  });

  it('two runs on one --out: the second is refused at once', async () => {
    const out = 'two';
    const first = run(out);
    await first.waitFor(/started job/);
    const second = runSync(['run', 'in.jsonl', '--out', out, ...JOB_ARGS]);
    expect(second.status).toBe(2);
    expect(second.stderr).toMatch(/another batchpilot run \(pid \d+, since .*\) is working on two/);
    expect((await first.exit).code).toBe(0);
    expectAllAnswered(out);
  });

  it('another input, other options or another --id on a finished folder are refused with what differs', () => {
    const out = 'twice-0';
    writeChatInput(dir, 'other.jsonl', 5);
    const other = runSync(['run', 'other.jsonl', '--out', out, ...JOB_ARGS]);
    expect(other.status).toBe(2);
    expect(other.stderr).toContain('input was in.jsonl, now other.jsonl');
    const options = runSync(['run', 'in.jsonl', '--out', out, ...JOB_ARGS, '--max-lines', '50']);
    expect(options.status).toBe(2);
    expect(options.stderr).toContain('"maxLines":100}, now');
    const id = runSync(['run', 'in.jsonl', '--out', out, ...JOB_ARGS, '--id', 'someone-else']);
    expect(id.status).toBe(2);
    expect(id.stderr).toContain('start afresh with --force');
  });

  it('--force starts a fresh job on a finished folder', async () => {
    const out = 'twice-1';
    const bought = (await stats()).batchesCreated;
    const p = run(out, ['--force']);
    expect((await p.exit).code, p.stderr()).toBe(0);
    expect((await stats()).batchesCreated).toBe(bought + 3);
    expectAllAnswered(out);
  });

  it('the same input into another folder reuses every answer and buys nothing, unless --no-reuse', async () => {
    const answers = { BATCHPILOT_ANSWERS_DIR: path.join(dir, 'answers') };
    const resultsOf = (out: string) =>
      readJsonl<{ custom_id: string; batchpilot_reused?: boolean }>(path.join(dir, out, 'results.jsonl'));
    const buy = async (out: string, extra: string[] = []) => {
      const before = (await stats()).batchesCreated;
      const p = run(out, extra, answers);
      expect((await p.exit).code, p.stderr()).toBe(0);
      expectAllAnswered(out);
      return (await stats()).batchesCreated - before;
    };
    expect(await buy('reuse-a')).toBe(3);
    expect(await buy('reuse-b')).toBe(0);
    expect(resultsOf('reuse-b').every((r) => r.batchpilot_reused === true)).toBe(true);
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'reuse-b', 'summary.json'), 'utf8')) as {
      lines: { reused?: number };
    };
    expect(summary.lines.reused).toBe(LINES);
    expect(await buy('reuse-c', ['--no-reuse'])).toBe(3);
    expect(resultsOf('reuse-c').some((r) => r.batchpilot_reused)).toBe(false);
  });

  it('mistakes a user can fix end at once with exit 2, before any server starts', () => {
    fs.writeFileSync(path.join(dir, 'empty.jsonl'), '\n');
    fs.writeFileSync(path.join(dir, 'a-file'), 'x');
    const cases: [string[], string][] = [
      [['run', 'missing.jsonl', '--out', 'o'], 'input missing.jsonl does not exist'],
      [['run', 'in.jsonl', '--out', '../escape'], 'outside the data root'],
      [['run', 'empty.jsonl', '--out', 'o'], 'nothing to send: empty.jsonl is empty'],
      [['run', 'in.jsonl', '--out', 'a-file'], '--out a-file is a file'],
    ];
    for (const [args, message] of cases) {
      const r = runSync(args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toContain('embedded Temporal');
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    }
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil(ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(100);
  }
}
