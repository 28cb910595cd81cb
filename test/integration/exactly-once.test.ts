// Exactly one batch per (shard, round): the provider activities find what an earlier attempt made
// instead of making it again. Run in an activity context against the emulator over HTTP, with the
// real openai client, as a retried activity would after a worker crash.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createActivities } from '../../activities/index.ts';
import { createProviderClient } from '../../worker/provider-client.ts';
import { unitFile } from '../../storage/layout.ts';
import { PROFILES, type Profile } from '../../common/profiles.ts';
import { startEmulator, type RunningEmulator } from '../../emulator/index.ts';
import { FAST_FAULTS } from '../support/harness.ts';

async function stats(
  e: RunningEmulator,
): Promise<{ batchesCreated: number; files: number; requests: Record<string, number> }> {
  return (await fetch(e.url.replace(/\/v1$/, '/_emulator/stats'))).json() as never;
}

function setup(emulator: RunningEmulator, profile: Profile) {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-once-'));
  const file = unitFile(workDir, 1, 0);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const line = (i: number) =>
    JSON.stringify({
      custom_id: `c${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'qwen-plus', messages: [{ role: 'user', content: `q${i}` }] },
    });
  fs.writeFileSync(file, [0, 1, 2].map(line).join('\n') + '\n');
  const acts = createActivities({
    openai: createProviderClient({ baseUrl: emulator.url, apiKey: undefined }),
    profile,
    dataDir: workDir,
    logger: pino({ level: 'silent' }),
  });
  return { workDir, acts };
}

describe.each([
  ['dashscope (input_file_ids filter)', 'dashscope', PROFILES.emulator],
  ['openai (list scan)', 'openai', { ...PROFILES.openai, listFilters: false }],
] as const)('exactly once with %s', (_name, emulatorProfile, profile) => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator({
      port: 0,
      dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'bp-once-emu-')),
      faults: FAST_FAULTS,
      profile: emulatorProfile,
    });
  });
  afterAll(async () => {
    await emulator.close();
  });

  it('reuses the uploaded file and the created batch when the activity runs again', async () => {
    const { workDir, acts } = setup(emulator, profile);
    const env = new MockActivityEnvironment();
    const call = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A): Promise<R> =>
      env.run<A, R, typeof fn>(fn, ...a);
    const key = 'job-x/shard-0/round-1';
    const notBefore = Math.floor(Date.now() / 1000) - 5;
    const f1 = await call(acts.uploadUnit, { key, workDir, round: 1, index: 0, notBefore });
    const f2 = await call(acts.uploadUnit, { key, workDir, round: 1, index: 0, notBefore });
    expect(f2.fileId).toBe(f1.fileId);
    const create = {
      key,
      jobId: 'job-x',
      fileId: f1.fileId,
      fileCreatedAt: f1.createdAt,
      endpoint: '/v1/chat/completions',
      completionWindow: '24h',
      metadata: { ds_name: 'once' },
    };
    const b1 = await call(acts.createBatch, create);
    const b2 = await call(acts.createBatch, create);
    expect(b2.id).toBe(b1.id);
    const s = await stats(emulator);
    expect(s.batchesCreated).toBe(1);
    expect(s.requests.upload).toBe(1);
    // A different round is a different batch.
    const b3 = await call(acts.createBatch, {
      ...create,
      key: 'job-x/shard-0/round-2',
      fileId: (
        await call(acts.uploadUnit, {
          key: 'job-x/shard-0/round-2',
          workDir,
          round: 1,
          index: 0,
          notBefore,
        })
      ).fileId,
    });
    expect(b3.id).not.toBe(b1.id);
    expect((await stats(emulator)).batchesCreated).toBe(2);
  });
});
