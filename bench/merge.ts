// Merge benchmark: the real merge activity (activities/merge.ts, mergeJob run inside
// MockActivityEnvironment) over generated outcome files in the exact layout collection leaves
// them (storage/layout.ts): per shard a round-1 outcome file (result lines first, then the
// error lines, as collection reads output then error file), retryable lines packed across shards
// into round-2 units as retry-round.ts packs them, the planner's `.lines` sidecars (Uint32LE input
// line numbers), round-1 manifest.json and rejected.jsonl. Baseline in the same run: `cat` of the
// same outcome files into one file (and `cat` + fsync, since the merge fsyncs what it commits).
// Each merge runs in a child process that reports its own peak RSS.
//
//   npm run bench:merge                                      # 1M lines, 20 shards of 50,000
//   npm run bench:merge -- --lines 250000,1000000,4000000    # RSS against line count
//   options: --shard-lines 50000, --retry-rate 0.1, --rounds 3, --keep (keep bench/data/merge-*
//   and reuse it next time)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { MergeSummary } from '../common/job-types.ts';
import {
  finalDir,
  lineNumbersFile,
  outcomeDir,
  outcomeFile,
  outputFile,
  rejectedFile,
  roundDir,
  roundManifestFile,
  shardFileName,
  workDirOf,
} from '../storage/layout.ts';
import type { PlanManifest } from '../storage/manifest.ts';
import { encodeOutcome, encodeOutcomeHead } from '../storage/outcome-record.ts';
import { rng } from './gen-chat.ts';
import { DATA, int, mb, median, peakRssMB, printTable, runJsonChild, secs } from './util.ts';

interface ChildResult {
  /** sha256 of results.jsonl, errors.jsonl, rejected.jsonl, manifest.json and the summary. */
  digest: string;
  ms: number;
  rssMB: number;
  rssBeforeMB: number;
  succeeded: number;
  failed: number;
  rejected: number;
}

interface Dataset {
  dir: string;
  outDir: string;
  workDir: string;
  shardLines: number[];
  outcomeFiles: string[];
  outcomeBytes: number;
  lines: number;
  valid: number;
  retried: number;
  permanent: number;
  rejected: number;
}

// ---------------------------------------------------------------------------------------------
// Child mode: one merge in this process.

function digestOf(ds: Dataset, summary: MergeSummary): string {
  const h = createHash('sha256');
  for (const f of ['results', 'errors', 'rejected', 'manifest'] as const) {
    const fd = fs.openSync(outputFile(ds.outDir, f), 'r');
    const buf = Buffer.allocUnsafe(1 << 22);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
    fs.closeSync(fd);
  }
  h.update(JSON.stringify(summary));
  return h.digest('hex');
}

async function child(datasetFile: string): Promise<void> {
  const ds = JSON.parse(fs.readFileSync(datasetFile, 'utf8')) as Dataset;
  const { MockActivityEnvironment } = await import('@temporalio/testing');
  const { mergeActivities } = await import('../activities/merge.ts');
  const { pino } = await import('pino');
  const deps = {
    openai: undefined as never,
    profile: undefined as never,
    dataDir: ds.dir,
    logger: pino({ level: 'silent' }),
  };
  const env = new MockActivityEnvironment();
  const rssBeforeMB = process.memoryUsage().rss / 1048576;
  const t = performance.now();
  const input = {
    paths: { input: path.join(ds.dir, 'input.jsonl'), outDir: ds.outDir, workDir: ds.workDir },
    shardLines: ds.shardLines,
    jobStatus: 'completed' as const,
  };
  const summary: MergeSummary = await env.run(mergeActivities(deps).mergeJob, input);
  const ms = performance.now() - t;
  const out: ChildResult = {
    digest: digestOf(ds, summary),
    ms,
    rssMB: peakRssMB(),
    rssBeforeMB,
    succeeded: summary.succeeded,
    failed: summary.failed,
    rejected: summary.rejected,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// ---------------------------------------------------------------------------------------------
// Data: what plan + collection + a retry round leave on disk.

const WORDS =
  'the of and to in is that for it as was with be by on not this are or from at which but have an they you were there one all we their been has more if will would who so no can what when up out about into them then some than could only other time new these two may first any like now such make over even most after also made many before must through back years where much way well down should because each just those people how too little good very without great world own see work long get here between both life being under never day same another know while last might'.split(
    ' ',
  );

/** The planner's grouping of gen-chat.ts lines: (model, thinking) by line number. */
const GROUPS = [
  { model: 'qwen-plus', thinking: null },
  { model: 'qwen-flash', thinking: null },
  { model: 'qwen3.6-plus', thinking: true },
  { model: 'qwen3.6-plus', thinking: false },
] as const;
const groupOf = (i: number): number => {
  const m = i % 5;
  return m < 3 ? 0 : m === 3 ? 1 : i % 2 === 0 ? 2 : 3;
};

const hex = (n: number, len: number): string => {
  let s = '';
  let x = (n * 2654435761) >>> 0;
  while (s.length < len) {
    x = Math.imul(x ^ (x >>> 13), 0x5bd1e995) >>> 0;
    s += x.toString(16).padStart(8, '0');
  }
  return s.slice(0, len);
};

/** A provider result line as the emulator writes it and collection re-serializes it. */
function successLine(
  cid: string,
  model: string,
  thinking: boolean,
  rand: () => number,
): {
  json: string;
  usage: [number, number, number];
} {
  let text = '';
  while (text.length < 80) text += WORDS[Math.floor(rand() * WORDS.length)]! + ' ';
  const content = `echo: ${text.slice(0, 80)}…`;
  const reasoning = thinking ? `Thinking about: ${content.slice(6, 46)}` : '';
  const prompt = 150 + Math.floor(rand() * 100);
  const reasoningTokens = thinking ? Math.ceil(reasoning.length / 4) : 0;
  const completion = Math.ceil(content.length / 4) + reasoningTokens;
  const h = hex(prompt * 7919 + cid.length, 48);
  const usage = `{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${prompt + completion}${thinking ? `,"completion_tokens_details":{"reasoning_tokens":${reasoningTokens}}` : ''}}`;
  const message = `{"role":"assistant","content":${JSON.stringify(content)}${thinking ? `,"reasoning_content":${JSON.stringify(reasoning)}` : ''}}`;
  const json = `{"id":"batch_req_${h.slice(0, 24)}","custom_id":"${cid}","response":{"status_code":200,"request_id":"${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}","body":{"id":"chatcmpl-${h.slice(24, 48)}","object":"chat.completion","created":1763800000,"model":"${model}","choices":[{"index":0,"message":${message},"finish_reason":"stop","logprobs":null}],"usage":${usage}}},"error":null}`;
  return { json, usage: [prompt, completion, prompt + completion] };
}

function errorLine(cid: string, status: number, code: string, message: string): string {
  const h = hex(status * 31 + cid.length, 24);
  const type = status >= 500 ? 'server_error' : 'invalid_request_error';
  return JSON.stringify({
    id: `batch_req_${h}`,
    custom_id: cid,
    response: {
      status_code: status,
      request_id: `${h.slice(0, 8)}-0000-4000-a000-${h.slice(8, 20)}`,
      body: { error: { code, message, type, param: null } },
    },
    error: null,
  });
}

/** Buffered appends to many files (one fd each, flushed at 1 MiB). */
class Appender {
  private readonly files = new Map<string, { fd: number; parts: string[]; size: number }>();
  bytes = 0;
  write(file: string, text: string): void {
    let f = this.files.get(file);
    if (!f) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      f = { fd: fs.openSync(file, 'a'), parts: [], size: 0 };
      this.files.set(file, f);
    }
    f.parts.push(text);
    f.size += text.length;
    if (f.size >= 1 << 20) this.flush(f);
  }
  private flush(f: { fd: number; parts: string[]; size: number }): void {
    const buf = Buffer.from(f.parts.join(''));
    fs.writeSync(f.fd, buf);
    this.bytes += buf.length;
    f.parts = [];
    f.size = 0;
  }
  close(file?: string): void {
    for (const [name, f] of this.files) {
      if (file && name !== file) continue;
      this.flush(f);
      fs.closeSync(f.fd);
      this.files.delete(name);
    }
  }
}

function generate(dir: string, lines: number, shardCap: number, retryRate: number): Dataset {
  fs.rmSync(dir, { recursive: true, force: true });
  const outDir = path.join(dir, 'out');
  const workDir = workDirOf(outDir);
  fs.mkdirSync(roundDir(workDir, 1), { recursive: true });
  const rand = rng(7);
  const app = new Appender();
  const rejected: string[] = [];
  // Open shard per group, as the planner packs: index given when a shard opens (first line order).
  const open: ({ index: number; lines: number } | null)[] = GROUPS.map(() => null);
  const shardLines: number[] = [];
  const shardGroup: number[] = [];
  const numbers: Buffer[] = [];
  const retryOf: number[][] = [];
  const pendingErrors: string[][] = [];
  let valid = 0;
  const closeShard = (s: number) => {
    for (const rec of pendingErrors[s]!) app.write(outcomeFile(workDir, s, 1, s), rec);
    pendingErrors[s] = [];
    app.close(outcomeFile(workDir, s, 1, s));
    fs.writeFileSync(lineNumbersFile(workDir, s), numbers[s]!.subarray(0, shardLines[s]! * 4));
  };
  for (let i = 0; i < lines; i++) {
    const cid = `req-${i}`;
    if (i % 1000 === 999) {
      rejected.push(
        `{"line":${i + 1},"code":"missing_model","message":"body.model is missing: add the model name","custom_id":"${cid}"}\n`,
      );
      continue;
    }
    const g = groupOf(i);
    let sh = open[g];
    if (!sh || sh.lines >= shardCap) {
      if (sh) closeShard(sh.index);
      sh = { index: shardLines.length, lines: 0 };
      open[g] = sh;
      shardLines.push(0);
      shardGroup.push(g);
      numbers.push(Buffer.alloc(shardCap * 4));
      retryOf.push([]);
      pendingErrors.push([]);
    }
    const s = sh.index;
    const idx = sh.lines++;
    shardLines[s] = sh.lines;
    numbers[s]!.writeUInt32LE(i + 1, idx * 4);
    valid++;
    const file = outcomeFile(workDir, s, 1, s);
    if (rand() < retryRate) {
      const status = [429, 500, 503][Math.floor(rand() * 3)]!;
      const e = { code: 'Throttling', message: 'Requests rate limit exceeded.', status_code: status };
      pendingErrors[s]!.push(
        `${encodeOutcome({ line: idx, kind: 'retry', attempt: 1, customId: cid, error: e }, errorLine(cid, status, e.code, e.message))}\n`,
      );
      retryOf[s]!.push(idx);
    } else {
      const { model, thinking } = GROUPS[g]!;
      const r = successLine(cid, model, thinking === true, rand);
      app.write(
        file,
        `${encodeOutcomeHead({ line: idx, kind: 'ok', attempt: 1, customId: cid, usage: r.usage })}${r.json}\n`,
      );
    }
  }
  for (const sh of open) if (sh) closeShard(sh.index);
  // Round 2: retry lines packed by group across shards in shard order (retry-round.ts), units of
  // at most shardCap lines; each unit's outcomes filed under their original shards.
  const unitOpen: ({ index: number; lines: number } | null)[] = GROUPS.map(() => null);
  let units = 0;
  let retried = 0;
  let permanent = 0;
  for (let s = 0; s < shardLines.length; s++) {
    const g = shardGroup[s]!;
    const errors: string[] = [];
    const touched = new Set<string>();
    for (const idx of retryOf[s]!) {
      let u = unitOpen[g];
      if (!u || u.lines >= shardCap) {
        u = { index: units++, lines: 0 };
        unitOpen[g] = u;
      }
      u.lines++;
      retried++;
      const inputLine = numbers[s]!.readUInt32LE(idx * 4);
      const cid = `req-${inputLine - 1}`;
      const file = outcomeFile(workDir, s, 2, u.index);
      touched.add(file);
      if (rand() < 0.01) {
        permanent++;
        const e = { code: 'DataInspectionFailed', message: 'Input data may contain inappropriate content.' };
        errors.push(
          file,
          `${encodeOutcome({ line: idx, kind: 'permanent', attempt: 2, customId: cid, error: { ...e, status_code: 400 } }, errorLine(cid, 400, e.code, e.message))}\n`,
        );
      } else {
        const { model, thinking } = GROUPS[g]!;
        const r = successLine(cid, model, thinking === true, rand);
        app.write(
          file,
          `${encodeOutcomeHead({ line: idx, kind: 'ok', attempt: 2, customId: cid, usage: r.usage })}${r.json}\n`,
        );
      }
    }
    for (let k = 0; k < errors.length; k += 2) app.write(errors[k]!, errors[k + 1]!);
    for (const f of touched) app.close(f);
  }
  app.close();
  fs.writeFileSync(rejectedFile(workDir), rejected.join(''));
  fs.writeFileSync(
    roundManifestFile(workDir, 1),
    JSON.stringify(
      {
        shards: shardLines.map((n, index) => ({
          index,
          file: shardFileName(index),
          model: GROUPS[shardGroup[index]!]!.model,
          thinking: GROUPS[shardGroup[index]!]!.thinking,
          lines: n,
          bytes: 0,
          sha256: '',
        })),
        limits: { maxLines: shardCap, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
        endpoint: '/v1/chat/completions',
        input: 'input.jsonl',
      } satisfies PlanManifest,
      null,
      2,
    ),
  );
  const outcomeFiles = shardLines.flatMap((_, s) =>
    fs
      .readdirSync(outcomeDir(workDir, s))
      .sort()
      .map((f) => path.join(outcomeDir(workDir, s), f)),
  );
  return {
    dir,
    outDir,
    workDir,
    shardLines,
    outcomeFiles,
    outcomeBytes: app.bytes,
    lines,
    valid,
    retried,
    permanent,
    rejected: rejected.length,
  };
}

// ---------------------------------------------------------------------------------------------
// Runs.

function catBaseline(ds: Dataset, sync: boolean): number {
  const target = path.join(ds.dir, 'cat.jsonl');
  fs.rmSync(target, { force: true });
  const t = performance.now();
  const fd = fs.openSync(target, 'w');
  const r = spawnSync('cat', ds.outcomeFiles, { stdio: ['ignore', fd, 'inherit'] });
  if (sync) fs.fsyncSync(fd);
  fs.closeSync(fd);
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error('cat failed');
  fs.rmSync(target, { force: true });
  return ms;
}

function resetOutputs(ds: Dataset): void {
  fs.rmSync(finalDir(ds.workDir), { recursive: true, force: true });
  for (const f of ['results', 'errors', 'rejected', 'manifest'] as const)
    fs.rmSync(outputFile(ds.outDir, f), { force: true });
}

/** results.jsonl must hold every successful line, in input order (read in chunks). */
function verify(ds: Dataset, r: ChildResult): void {
  const expectOk = ds.valid - ds.permanent;
  if (r.succeeded !== expectOk || r.failed !== ds.permanent || r.rejected !== ds.rejected)
    throw new Error(`merge counts ${JSON.stringify(r)} differ from the generated data`);
  const fd = fs.openSync(path.join(ds.outDir, 'results.jsonl'), 'r');
  const buf = Buffer.allocUnsafe(1 << 22);
  let have = 0;
  let last = -1;
  let n = 0;
  for (;;) {
    const got = fs.readSync(fd, buf, have, buf.length - have, null);
    have += got;
    let at = 0;
    for (let nl = buf.indexOf(10, at); nl !== -1 && nl < have; nl = buf.indexOf(10, at)) {
      const m = /"custom_id":"req-(\d+)"/.exec(buf.toString('latin1', at, Math.min(nl, at + 200)));
      const id = Number(m![1]);
      if (id <= last) throw new Error(`results.jsonl out of order at req-${id}`);
      last = id;
      n++;
      at = nl + 1;
    }
    buf.copy(buf, 0, at, have);
    have -= at;
    if (got === 0) break;
  }
  fs.closeSync(fd);
  if (n !== expectOk) throw new Error(`results.jsonl has ${n} lines, expected ${expectOk}`);
}

async function benchSize(lines: number, shardCap: number, retryRate: number, rounds: number, keep: boolean) {
  const dir = path.join(DATA, `merge-${lines}`);
  process.stdout.write(`\n[${int(lines)} lines] outcome files in ${dir} ...\n`);
  const t = performance.now();
  const datasetFile = path.join(dir, 'dataset.json');
  const params = JSON.stringify({ lines, shardCap, retryRate });
  // A dataset kept by --keep with the same parameters is reused.
  let ds: Dataset;
  const paramsFile = path.join(dir, 'params.json');
  if (
    fs.existsSync(paramsFile) &&
    fs.readFileSync(paramsFile, 'utf8') === params &&
    fs.existsSync(datasetFile)
  ) {
    ds = JSON.parse(fs.readFileSync(datasetFile, 'utf8')) as Dataset;
  } else {
    ds = generate(dir, lines, shardCap, retryRate);
    fs.writeFileSync(datasetFile, JSON.stringify(ds));
    fs.writeFileSync(paramsFile, params);
  }
  process.stdout.write(
    `  ${ds.shardLines.length} shards, ${ds.outcomeFiles.length} outcome files, ${mb(ds.outcomeBytes)}, ${int(ds.retried)} lines retried in round 2 (${secs(performance.now() - t)})\n`,
  );
  spawnSync('cat', ds.outcomeFiles, { stdio: 'ignore' }); // warm the page cache for both sides
  const cats: number[] = [];
  const catSyncs: number[] = [];
  const merges: ChildResult[] = [];
  for (let r = 0; r < rounds; r++) {
    cats.push(catBaseline(ds, false));
    catSyncs.push(catBaseline(ds, true));
    resetOutputs(ds);
    const m = await runJsonChild<ChildResult>(import.meta.filename, ['--child', datasetFile]);
    if (r === 0) verify(ds, m);
    else if (m.digest !== merges[0]!.digest) throw new Error('the merge wrote different outputs this round');
    merges.push(m);
    const line = `  round ${r + 1}: cat ${secs(cats[r]!)}, cat+fsync ${secs(catSyncs[r]!)}, mergeJob ${secs(m.ms)} (peak RSS ${m.rssMB.toFixed(0)} MB)`;
    process.stdout.write(`${line}\n`);
  }
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  return {
    lines,
    shards: ds.shardLines.length,
    bytes: ds.outcomeBytes,
    cat: median(cats),
    catSync: median(catSyncs),
    merge: median(merges.map((m) => m.ms)),
    rss: Math.max(...merges.map((m) => m.rssMB)),
    rssBefore: Math.max(...merges.map((m) => m.rssBeforeMB)),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      lines: { type: 'string', default: '1000000' },
      'shard-lines': { type: 'string', default: '50000' },
      'retry-rate': { type: 'string', default: '0.1' },
      rounds: { type: 'string', default: '3' },
      keep: { type: 'boolean' },
    },
  });
  if (values.child) return child(values.child);
  const sizes = values.lines.split(',').map(Number);
  const results = [];
  for (const lines of sizes) {
    results.push(
      await benchSize(
        lines,
        Number(values['shard-lines']),
        Number(values['retry-rate']),
        Number(values.rounds),
        values.keep === true,
      ),
    );
  }
  for (const r of results) {
    printTable(
      `Merge, ${int(r.lines)} lines (${r.shards} shards + a retry round, ${mb(r.bytes)} of outcomes)`,
      [
        ['cat of the outcome files (median)', secs(r.cat)],
        ['cat + fsync (median)', secs(r.catSync)],
        ['mergeJob (median)', secs(r.merge)],
        ['merge / cat', `${(r.merge / r.cat).toFixed(2)}x (target <= 3x)`],
        ['merge / (cat + fsync)', `${(r.merge / r.catSync).toFixed(2)}x`],
        [
          'merge peak RSS',
          `${r.rss.toFixed(0)} MB (target <= 256 MB; ${r.rssBefore.toFixed(0)} MB before the merge)`,
        ],
      ],
    );
  }
}

await main();
