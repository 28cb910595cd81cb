// With BATCHPILOT_CODEC_KEY, workflow payloads are encrypted: the raw history holds neither the
// input path nor the summary in plain text, and client and worker with the key work as usual.
import { Client, Connection } from '@temporalio/client';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { main } from '../../client/cli.ts';
import { dataConverterFor } from '../../common/codec.ts';
import { startHarness, writeChatInput, type Harness } from '../support/harness.ts';

const KEY = '0123456789abcdef'.repeat(4);

function rawText(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('latin1');
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') return Object.values(value).map(rawText).join('\n');
  return '';
}

describe('payload encryption', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ codecKey: KEY });
  });
  afterAll(async () => {
    await h.close();
  });

  it('keeps input paths and summaries out of the raw history', async () => {
    const input = writeChatInput(h.dataDir, 'very-private-input.jsonl', 10);
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    const env = {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      BATCHPILOT_TASK_QUEUE: h.taskQueue,
      BATCHPILOT_DATA_DIR: h.dataDir,
      BATCHPILOT_CODEC_KEY: KEY,
    };
    const code = await main(
      ['start', input, '--out', 'private-out', '--id', 'codec-job', '--poll-interval', '200ms', '--wait'],
      { stdout, stderr: new PassThrough(), env },
    );
    expect(code, out).toBe(0);
    expect(out).toContain('10 succeeded');

    const plain = new Client({
      connection: await Connection.connect({ address: inject('temporalAddress') }),
    });
    const text = rawText(await plain.workflow.getHandle('codec-job').fetchHistory());
    expect(text).toContain('binary/encrypted');
    expect(text).not.toContain('very-private-input');
    expect(text).not.toContain('private-out');
    expect(text).not.toContain('succeeded');
    // Without the key nothing decodes; with it, memo and result read as usual.
    await expect(plain.workflow.getHandle('codec-job').result()).rejects.toThrow(/binary\/encrypted/);
    const keyed = new Client({ connection: plain.connection, dataConverter: dataConverterFor(KEY)! });
    const described = await keyed.workflow.getHandle('codec-job').describe();
    expect(described.memo).toMatchObject({ input, outDir: 'private-out' });
    expect(described.searchAttributes.BatchpilotInput).toBeUndefined();
    expect(described.searchAttributes.BatchpilotStatus).toEqual(['completed']);
    await plain.connection.close();
  });
});
