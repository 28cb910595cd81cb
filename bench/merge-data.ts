// The merge benchmark's data: what plan + collection + a retry round leave on disk, generated in the
// exact layout and formats of storage/ (see bench/merge.ts for what is measured on it).
import fs from 'node:fs';
import path from 'node:path';
import {
  lineNumbersFile,
  outcomeDir,
  outcomeFile,
  rejectedFile,
  roundDir,
  roundManifestFile,
  shardFileName,
  workDirOf,
} from '../storage/layout.ts';
import type { PlanManifest } from '../storage/manifest.ts';
import { encodeOutcome, encodeOutcomeHead } from '../storage/outcome-record.ts';
import { rng } from './gen-chat.ts';

export interface Dataset {
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

/** What round 1 left: shards opened as the planner packs them, and the lines each must retry. */
interface RoundOne {
  shardLines: number[];
  shardGroup: number[];
  /** Per shard: the planner's `.lines` sidecar (Uint32LE input line numbers). */
  numbers: Buffer[];
  /** Per shard: indexes of its lines that ended retryable. */
  retryOf: number[][];
  valid: number;
  rejected: string[];
}

/** Round 1: every line planned into a shard of its group and collected, a share as retryable. */
function generateRoundOne(
  workDir: string,
  lines: number,
  shardCap: number,
  retryRate: number,
  rand: () => number,
  app: Appender,
): RoundOne {
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
  return { shardLines, shardGroup, numbers, retryOf, valid, rejected };
}

/**
 * Round 2: retry lines packed by group across shards in shard order (retry-round.ts), units of at
 * most shardCap lines; each unit's outcomes filed under their original shards.
 */
function generateRoundTwo(
  workDir: string,
  r1: RoundOne,
  shardCap: number,
  rand: () => number,
  app: Appender,
): { retried: number; permanent: number } {
  const { shardLines, shardGroup, numbers, retryOf } = r1;
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
  return { retried, permanent };
}

function writePlanManifest(workDir: string, r1: RoundOne, shardCap: number): void {
  const { shardLines, shardGroup } = r1;
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
}

export function generate(dir: string, lines: number, shardCap: number, retryRate: number): Dataset {
  fs.rmSync(dir, { recursive: true, force: true });
  const outDir = path.join(dir, 'out');
  const workDir = workDirOf(outDir);
  fs.mkdirSync(roundDir(workDir, 1), { recursive: true });
  const rand = rng(7);
  const app = new Appender();
  const r1 = generateRoundOne(workDir, lines, shardCap, retryRate, rand, app);
  const { retried, permanent } = generateRoundTwo(workDir, r1, shardCap, rand, app);
  app.close();
  const { shardLines, valid, rejected } = r1;
  fs.writeFileSync(rejectedFile(workDir), rejected.join(''));
  writePlanManifest(workDir, r1, shardCap);
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
