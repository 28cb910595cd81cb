// The on-disk contract's reading and writing side: manifests parsed (not cast) with an error that
// names the file, the atomic writes leaving whole files or none, and put-if-absent deciding
// between two writers of one name.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic, writeFileAtomicSync, writeFileIfAbsent } from '../../storage/atomic-file.ts';
import {
  collectedMarkers,
  outcomeFile,
  outcomeFilesOf,
  roundManifestFile,
  roundsOnDisk,
  collectedMarker,
  roundDir,
} from '../../storage/layout.ts';
import {
  ManifestError,
  readPlanManifest,
  readRoundManifest,
  writePlanManifestSync,
  writeRoundManifest,
  type PlanManifest,
} from '../../storage/manifest.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-storage-'));
  dirs.push(d);
  return d;
}

const plan = {
  shards: [
    {
      index: 0,
      file: 'shard-00000.jsonl',
      model: 'qwen-plus',
      thinking: null,
      lines: 2,
      bytes: 40,
      inputTokens: 10,
      sha256: 'ab',
    },
  ],
  limits: { maxLines: 50_000, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
  endpoint: '/v1/chat/completions',
  input: '/data/in.jsonl',
} satisfies PlanManifest;

describe('manifests', () => {
  it('read back what was written, in the layout the outputs copy', async () => {
    const work = tmp();
    writePlanManifestSync(roundManifestFile(work, 1), plan);
    expect(await readPlanManifest(work)).toEqual(plan);
    expect(fs.readFileSync(roundManifestFile(work, 1), 'utf8')).toBe(JSON.stringify(plan, null, 2) + '\n');
    const round = { round: 2, units: [{ index: 0, lines: 3, bytes: 90, group: 'qwen-plus\u0000null' }] };
    fs.mkdirSync(roundDir(work, 2));
    await writeRoundManifest(roundManifestFile(work, 2), round);
    expect(await readRoundManifest(work, 2)).toEqual(round);
    expect(await readRoundManifest(work, 3)).toBeUndefined();
  });

  it('that do not parse fail with the file, the field and the fix', async () => {
    const work = tmp();
    const file = roundManifestFile(work, 1);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ ...plan, shards: [{ index: 0, model: 'qwen-plus' }] }));
    const err = await readPlanManifest(work).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(/shards\.0\.file/);
    expect((err as Error).message).toMatch(/--force/);
    fs.writeFileSync(file, '{"shards": [');
    await expect(readPlanManifest(work)).rejects.toThrow(new RegExp(`${file} is not JSON`));
  });
});

describe('atomic files', () => {
  it('appear whole under their name, with no temporary left, in folders created on the way', async () => {
    const dir = tmp();
    const a = path.join(dir, 'x', 'y', 'a.json');
    await writeFileAtomic(a, '{"a":1}\n', 'durable');
    writeFileAtomicSync(path.join(dir, 'x', 'b.json'), '{"b":2}\n', 'rebuildable');
    await writeFileAtomic(a, '{"a":3}\n', 'rebuildable');
    expect(fs.readFileSync(a, 'utf8')).toBe('{"a":3}\n');
    expect(fs.readdirSync(path.join(dir, 'x')).sort()).toEqual(['b.json', 'y']);
    expect(fs.readdirSync(path.join(dir, 'x', 'y'))).toEqual(['a.json']);
  });

  it('written if absent: of many writers racing for one name, exactly one wins and its bytes stay', async () => {
    const file = path.join(tmp(), 'job.json');
    const wins = await Promise.all(
      Array.from({ length: 8 }, (_, k) => writeFileIfAbsent(file, `{"writer":${k}}\n`)),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(fs.readFileSync(file, 'utf8')).toBe(`{"writer":${wins.indexOf(true)}}\n`);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['job.json']);
  });
});

describe('layout listings', () => {
  it('list outcome files and collected markers by round then unit, rounds newest first', async () => {
    const work = tmp();
    for (const [r, u] of [
      [2, 0],
      [1, 10],
      [1, 2],
    ] as const) {
      const f = outcomeFile(work, 3, r, u);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, '');
      fs.writeFileSync(`${f}.tmp-1-abc`, '');
      const m = collectedMarker(work, r, u);
      fs.mkdirSync(path.dirname(m), { recursive: true });
      fs.writeFileSync(m, '{}');
    }
    for (const r of [1, 2, 10]) fs.mkdirSync(roundDir(work, r), { recursive: true });
    fs.mkdirSync(`${roundDir(work, 3)}.tmp`);
    const order = (l: { round: number; unit: number }[]) => l.map((f) => [f.round, f.unit]);
    expect(order(await outcomeFilesOf(work, 3))).toEqual([
      [1, 2],
      [1, 10],
      [2, 0],
    ]);
    expect(order(await collectedMarkers(work))).toEqual([
      [1, 2],
      [1, 10],
      [2, 0],
    ]);
    expect(await outcomeFilesOf(work, 4)).toEqual([]);
    expect(await roundsOnDisk(work)).toEqual([10, 2, 1]);
  });
});
