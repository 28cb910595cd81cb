// Shared by the planner tests: temp dirs, reading a plan back from disk, and an oracle that judges
// a line with JSON.parse (independently of the planner's byte scanner).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  planInputTuned,
  type PlanOptions,
  type PlanReport,
  type PlanTuning,
  type ShardInfo,
} from '../../planner/index.ts';

export const ENDPOINT = '/v1/chat/completions';
export const LIMITS = { maxLines: 50_000, maxBytes: 500_000_000, maxLineBytes: 6_000_000 };

export function tmpDir(prefix = 'bp-plan-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface ReadPlan {
  manifest: {
    shards: ShardInfo[];
    limits: unknown;
    endpoint: string;
    input: string;
  };
  /** Per shard: its lines (without newline) and the sidecar's input line numbers. */
  shards: { lines: string[]; nums: number[]; bytes: number }[];
  rejected: { line: number; code: string; message: string; custom_id?: string }[];
}

export function readPlan(outDir: string): ReadPlan {
  const manifest = JSON.parse(
    fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8'),
  ) as ReadPlan['manifest'];
  const shards = manifest.shards.map((s) => {
    const buf = fs.readFileSync(path.join(outDir, s.file));
    const text = buf.toString('utf8');
    const side = fs.readFileSync(path.join(outDir, s.file.replace(/\.jsonl$/, '.lines')));
    const nums: number[] = [];
    for (let i = 0; i < side.length; i += 4) nums.push(side.readUInt32LE(i));
    return { lines: text === '' ? [] : text.slice(0, -1).split('\n'), nums, bytes: buf.length };
  });
  const rejectedText = fs.readFileSync(path.join(outDir, 'rejected.jsonl'), 'utf8');
  const rejected = rejectedText
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ReadPlan['rejected'][number]);
  return { manifest, shards, rejected };
}

export async function plan(
  input: string,
  outDir: string | undefined,
  extra: Partial<PlanOptions> = {},
  tuning: PlanTuning = { workers: 0 },
): Promise<PlanReport> {
  return planInputTuned(
    { input, endpoint: ENDPOINT, limits: LIMITS, ...(outDir ? { outDir } : {}), ...extra },
    tuning,
  );
}

/** The request lines of a JSONL text as the planner numbers them: 1-based, blank lines skipped. */
export function requestLines(bytes: Buffer): { line: number; bytes: Buffer }[] {
  const out: { line: number; bytes: Buffer }[] = [];
  let start = 0;
  let line = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(10, start);
    if (end < 0) end = bytes.length;
    line++;
    let s = start;
    let e = end;
    if (e > s && bytes[e - 1] === 0x0d) e--;
    if (e - s >= 3 && bytes[s] === 0xef && bytes[s + 1] === 0xbb && bytes[s + 2] === 0xbf) s += 3;
    const b = bytes.subarray(s, e);
    if (/[^ \t\r]/.test(b.toString('latin1'))) out.push({ line, bytes: b });
    start = end + 1;
  }
  return out;
}

const TRACKED = [
  'custom_id',
  'method',
  'url',
  'body',
  'model',
  'stream',
  'enable_thinking',
  'thinking_budget',
  'extra_body',
];

/**
 * The oracle: would the provider take this line? (Uniqueness of ids is the caller's.) 'unsure' for
 * lines that name a recorded key twice, where JSON.parse and the planner rightly differ.
 */
export function oracle(
  b: Buffer,
  maxLineBytes: number,
): { ok: boolean | 'unsure'; id?: string; model?: string; thinking?: boolean | null } {
  const text = b.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(b)) return { ok: false };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false };
  const o = v as Record<string, unknown>;
  const id =
    typeof o.custom_id === 'string' && o.custom_id !== '' && [...o.custom_id].length <= 256
      ? o.custom_id
      : undefined;
  const body = o.body as Record<string, unknown> | undefined;
  if (TRACKED.some((k) => text.split(`"${k}"`).length > 2)) return { ok: 'unsure' };
  const ok =
    id !== undefined &&
    o.method === 'POST' &&
    o.url === ENDPOINT &&
    typeof body === 'object' &&
    body !== null &&
    !Array.isArray(body) &&
    typeof body.model === 'string' &&
    body.model !== '' &&
    body.stream !== true &&
    (body.enable_thinking === undefined || typeof body.enable_thinking === 'boolean') &&
    !(
      typeof body.extra_body === 'object' &&
      body.extra_body !== null &&
      'enable_thinking' in body.extra_body
    ) &&
    b.length <= maxLineBytes;
  return {
    ok,
    ...(id !== undefined ? { id } : {}),
    ...(ok
      ? {
          model: body.model as string,
          thinking: typeof body.enable_thinking === 'boolean' ? body.enable_thinking : null,
        }
      : {}),
  };
}
