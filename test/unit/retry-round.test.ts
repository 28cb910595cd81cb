// Packing a retry round on a work directory built by hand in the layout collection leaves
// (storage/layout.ts): only the lines whose last outcome asks for another attempt are packed,
// lines of several shards share units by (model, thinking), units close at the line and byte
// limits, and each unit's `.origin` sidecar points every line back to its round-1 shard and index.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { retryRoundActivities, type RetryRound, type RetryRoundInput } from '../../activities/retry-round.ts';
import type { Limits } from '../../common/profiles.ts';
import {
  originFile,
  outcomeFile,
  roundDir,
  roundManifestFile,
  unitFile,
  workDirOf,
} from '../../storage/layout.ts';
import { encodeOutcome, type OutcomeRecord } from '../../storage/outcome-record.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface ShardSpec {
  model: string;
  thinking: boolean | null;
  lines: number;
  /** Last outcome of each line index in round 1 (lines not named got `ok`). */
  outcomes: Record<number, OutcomeRecord['kind'] | 'cancelled' | 'exhausted'>;
}

/** Every shard line is 40 bytes plus its newline, so byte limits fall on known lines. */
const lineText = (shard: number, i: number): string => {
  const head = `{"custom_id":"s${shard}-${i}","body":{"p":"`;
  return `${head}${'x'.repeat(40 - head.length - 3)}"}}`;
};

function layout(shards: ShardSpec[]) {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-retry-'));
  dirs.push(outDir);
  const workDir = workDirOf(outDir);
  fs.mkdirSync(roundDir(workDir, 1), { recursive: true });
  shards.forEach((s, n) => {
    const lines = Array.from({ length: s.lines }, (_, i) => lineText(n, i));
    fs.writeFileSync(unitFile(workDir, 1, n), lines.join('\n') + '\n');
    const records = lines.map((_, i) => {
      const k = s.outcomes[i] ?? 'ok';
      const record: OutcomeRecord =
        k === 'cancelled'
          ? {
              line: i,
              kind: 'permanent',
              attempt: 1,
              customId: `s${n}-${i}`,
              error: { code: 'batch_cancelled', message: 'cancelled', status_code: null },
            }
          : k === 'exhausted'
            ? {
                line: i,
                kind: 'retry',
                attempt: 3,
                customId: `s${n}-${i}`,
                error: { code: 'x', message: 'x', status_code: 500 },
              }
            : { line: i, kind: k, attempt: 1, customId: `s${n}-${i}` };
      return encodeOutcome(record, '{}');
    });
    const f = outcomeFile(workDir, n, 1, n);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, records.map((r) => r + '\n').join(''));
  });
  fs.writeFileSync(
    roundManifestFile(workDir, 1),
    JSON.stringify({
      shards: shards.map((s, index) => ({
        index,
        file: `shard-${String(index).padStart(5, '0')}.jsonl`,
        model: s.model,
        thinking: s.thinking,
        lines: s.lines,
        bytes: s.lines * 41,
        sha256: '',
      })),
      limits: { maxLines: 1000, maxBytes: 1_000_000, maxLineBytes: 1000 },
      endpoint: '/v1/chat/completions',
      input: path.join(outDir, 'in.jsonl'),
    }),
  );
  const input = (limits: Limits, withTokens?: boolean): RetryRoundInput => ({
    paths: { input: path.join(outDir, 'in.jsonl'), outDir, workDir },
    round: 2,
    maxAttempts: 3,
    limits,
    shardCount: shards.length,
    ...(withTokens ? { withTokens } : {}),
  });
  return { workDir, input };
}

async function prepareAny(input: RetryRoundInput): Promise<number[] | RetryRound> {
  const { prepareRetryRound } = retryRoundActivities();
  return new MockActivityEnvironment().run<
    [RetryRoundInput],
    number[] | RetryRound,
    typeof prepareRetryRound
  >(prepareRetryRound, input);
}

async function prepare(input: RetryRoundInput): Promise<number[]> {
  const out = await prepareAny(input);
  if (!Array.isArray(out)) throw new Error('prepareRetryRound returned tokens without withTokens');
  return out;
}

/** What round 2 holds: the manifest's units, each unit's lines and its origins as [shard, index]. */
function readRound(workDir: string) {
  const manifest = JSON.parse(fs.readFileSync(roundManifestFile(workDir, 2), 'utf8')) as {
    round: number;
    units: { index: number; lines: number; bytes: number; group: string }[];
  };
  const units = manifest.units.map((u) => {
    const text = fs.readFileSync(unitFile(workDir, 2, u.index), 'utf8');
    const side = new Uint32Array(new Uint8Array(fs.readFileSync(originFile(workDir, 2, u.index))).buffer);
    const origins: [number, number][] = [];
    for (let k = 0; k < side.length; k += 2) origins.push([side[k]!, side[k + 1]!]);
    return { lines: text.slice(0, -1).split('\n'), origins };
  });
  return { manifest, units };
}

const A = 'qwen-plus\u0000null';
const B = 'qwen3.6-plus\u0000true';

describe('prepareRetryRound', () => {
  const shards: ShardSpec[] = [
    {
      model: 'qwen-plus',
      thinking: null,
      lines: 7,
      outcomes: { 0: 'retry', 1: 'permanent', 2: 'retry', 3: 'cancelled', 4: 'exhausted', 5: 'retry' },
    },
    { model: 'qwen3.6-plus', thinking: true, lines: 3, outcomes: { 1: 'retry' } },
    { model: 'qwen-plus', thinking: null, lines: 2, outcomes: { 0: 'retry', 1: 'retry' } },
    { model: 'qwen-plus', thinking: null, lines: 2, outcomes: {} },
  ];

  it('packs retryable lines of all shards by group, closing a unit at max lines', async () => {
    const { workDir, input } = layout(shards);
    const lines = await prepare(input({ maxLines: 3, maxBytes: 1_000_000, maxLineBytes: 1000 }));
    expect(lines).toEqual([3, 3, 1]);
    const { manifest, units } = readRound(workDir);
    expect(manifest).toEqual({
      round: 2,
      units: [
        { index: 0, lines: 3, bytes: 123, group: A },
        { index: 1, lines: 3, bytes: 123, group: A },
        { index: 2, lines: 1, bytes: 41, group: B },
      ],
    });
    // A permanent failure, an ok line and a retry past maxAttempts stay out; a line the user's
    // cancel stopped goes again. Input order within a unit; a full unit continues in the next.
    expect(units[0]!.origins).toEqual([
      [0, 0],
      [0, 2],
      [0, 3],
    ]);
    expect(units[1]!.origins).toEqual([
      [0, 5],
      [2, 0],
      [2, 1],
    ]);
    expect(units[2]!.origins).toEqual([[1, 1]]);
    for (const u of units) expect(u.lines).toEqual(u.origins.map(([s, i]) => lineText(s, i)));
    expect(fs.existsSync(`${roundDir(workDir, 2)}.tmp`)).toBe(false);
  });

  it('closes a unit when the next line would pass max bytes (a unit may end exactly at it)', async () => {
    const { workDir, input } = layout(shards);
    // 41 bytes a line: two fit in 82, a third would not.
    const lines = await prepare(input({ maxLines: 100, maxBytes: 82, maxLineBytes: 81 }));
    expect(lines).toEqual([2, 2, 1, 2]);
    const { manifest, units } = readRound(workDir);
    expect(manifest.units.map((u) => [u.group, u.bytes])).toEqual([
      [A, 82],
      [A, 82],
      [B, 41],
      [A, 82],
    ]);
    expect(units.map((u) => u.origins)).toEqual([
      [
        [0, 0],
        [0, 2],
      ],
      [
        [0, 3],
        [0, 5],
      ],
      [[1, 1]],
      [
        [2, 0],
        [2, 1],
      ],
    ]);
  });

  it("returns each unit's model and estimated input tokens when asked (withTokens)", async () => {
    const { input } = layout(shards);
    const round = await prepareAny(input({ maxLines: 3, maxBytes: 1_000_000, maxLineBytes: 1000 }, true));
    // 123 bytes of three 41-byte lines, 41 of one: about four bytes a token, rounded up.
    expect(round).toEqual({
      lines: [3, 3, 1],
      tokens: [
        { model: 'qwen-plus', tokens: 31 },
        { model: 'qwen-plus', tokens: 31 },
        { model: 'qwen3.6-plus', tokens: 11 },
      ],
    });
  });

  it('writes a round with no units when nothing asks for another attempt', async () => {
    const { workDir, input } = layout([{ model: 'qwen-plus', thinking: null, lines: 2, outcomes: {} }]);
    expect(await prepare(input({ maxLines: 3, maxBytes: 1000, maxLineBytes: 100 }))).toEqual([]);
    expect(readRound(workDir).manifest).toEqual({ round: 2, units: [] });
  });
});
