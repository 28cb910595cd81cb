// State under the data dir survives a restart: files, batches, counters, submission counts, and a
// batch in flight carries on to a complete output with every line exactly once.
import { afterEach, describe, expect, it } from 'vitest';
import { chatFile, createBatch, download, harness, stats, waitFor, type Harness } from './helpers.ts';

const open: Harness[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.close()));
});
async function emulator(...args: Parameters<typeof harness>): Promise<Harness> {
  const h = await harness(...args);
  open.push(h);
  return h;
}

describe('restart', () => {
  it('resumes a batch stopped mid-run: complete output, every line exactly once', async () => {
    const h = await emulator({
      faults: { validatingMs: 50, perLineMs: 4, finalizingMs: 50, seed: 1, linePermanentRate: 0.2 },
    });
    const created = await createBatch(h.client, chatFile(300), { metadata: { ds_name: 'restart' } });
    let b = await waitFor(h.client, created.id, ['in_progress']);
    while (b.request_counts!.completed + b.request_counts!.failed < 60)
      b = await h.client.batches.retrieve(created.id);
    await h.restart();
    b = await h.client.batches.retrieve(created.id);
    expect(b.status).toBe('in_progress');
    const doneBefore = b.request_counts!.completed + b.request_counts!.failed;
    expect(doneBefore).toBeGreaterThanOrEqual(60);
    expect(doneBefore).toBeLessThan(300);
    b = await waitFor(h.client, created.id);
    expect(b.status).toBe('completed');
    const lines = [
      ...(await download(h.client, b.output_file_id)),
      ...(await download(h.client, b.error_file_id)),
    ];
    const ids = lines.map((l) => l.custom_id);
    expect(ids).toHaveLength(300);
    expect(new Set(ids).size).toBe(300);
    expect(b.request_counts!.completed + b.request_counts!.failed).toBe(300);
    expect(b.metadata).toEqual({ ds_name: 'restart' });

    // The same job on an emulator never stopped gives the same outcome per line.
    const steady = await emulator({
      faults: { validatingMs: 50, perLineMs: 0, finalizingMs: 50, seed: 1, linePermanentRate: 0.2 },
    });
    const s = await waitFor(steady.client, (await createBatch(steady.client, chatFile(300))).id);
    const codes = async (hh: Harness, batch: typeof b) =>
      Object.fromEntries(
        [
          ...(await download(hh.client, batch.output_file_id)),
          ...(await download(hh.client, batch.error_file_id)),
        ].map((l) => [l.custom_id, l.response!.status_code]),
      );
    expect(await codes(h, b)).toEqual(await codes(steady, s));
  });

  it('keeps files, batches, counters and submission counts', async () => {
    const faults = { validatingMs: 20, perLineMs: 0, finalizingMs: 20, seed: 3, lineRetryableRate: 0.5 };
    const h = await emulator({ faults });
    const first = await waitFor(h.client, (await createBatch(h.client, chatFile(30))).id);
    const statsBefore = await stats(h.emu);
    await h.restart();
    expect(await h.client.batches.retrieve(first.id)).toEqual(first);
    expect(await (await h.client.files.content(first.output_file_id!)).text()).toBeTruthy();
    const statsAfter = await stats(h.emu);
    expect(statsAfter).toMatchObject({
      batchesCreated: 1,
      batchesByInputFile: statsBefore.batchesByInputFile,
      files: statsBefore.files,
      bytesStored: statsBefore.bytesStored,
    });
    expect(statsAfter.requests.create).toBe(1);
    const second = await waitFor(h.client, (await createBatch(h.client, chatFile(30))).id);

    // An emulator that never restarted, given the same two batches, fails the same lines the second time.
    const steady = await emulator({ faults });
    await waitFor(steady.client, (await createBatch(steady.client, chatFile(30))).id);
    const s2 = await waitFor(steady.client, (await createBatch(steady.client, chatFile(30))).id);
    const failedIds = async (hh: Harness, errorFile: string | null | undefined) =>
      (await download(hh.client, errorFile)).map((l) => l.custom_id).sort();
    expect(await failedIds(h, second.error_file_id)).toEqual(await failedIds(steady, s2.error_file_id));
    expect(await failedIds(h, second.error_file_id)).not.toEqual(await failedIds(h, first.error_file_id));
  });

  it('finishes a batch that was validating or cancelling when stopped', async () => {
    const h = await emulator({ faults: { validatingMs: 300, perLineMs: 1, finalizingMs: 300 } });
    const validating = await createBatch(h.client, chatFile(5, 'v'));
    const cancelled = await createBatch(h.client, chatFile(5, 'c'));
    await h.client.batches.cancel(cancelled.id);
    await h.restart({ faults: { validatingMs: 20, perLineMs: 1, finalizingMs: 20 } });
    expect((await waitFor(h.client, validating.id)).status).toBe('completed');
    expect((await waitFor(h.client, cancelled.id)).status).toBe('cancelled');
  });
});
