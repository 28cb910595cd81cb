// Polling by listing: the state of every watched batch from a few list calls (100 batches a page)
// instead of one retrieve per batch, and a shard's registration with the watcher workflow that
// makes them (docs/scale.md, Polling).
import { Context } from '@temporalio/activity';
import type OpenAI from 'openai';
import type { Client } from '@temporalio/client';
import {
  SWEEP_PERIOD_MEMO,
  WATCHER_WORKFLOW,
  WATCH_SIGNAL,
  watchFingerprint,
  watcherWorkflowId,
  type WatchRegistration,
} from '../common/batch-watch.ts';
import type { BatchView } from '../common/job-types.ts';
import type { ActivityDeps } from './deps.ts';
import { listMissing, signal, SKEW_SECONDS } from './batch-lookups.ts';
import { toView } from './batch-view.ts';
import { logFor } from './log.ts';
import { count } from './metrics.ts';
import { failureOf } from './provider-calls.ts';
import { publicUrl, statusOf } from './provider-errors.ts';
import { Spacer } from './spacer.ts';

/** A watched batch as a sweep needs it. */
export interface SweepBatch {
  id: string;
  fileId: string;
  createdAt: number;
  seen: string;
}

export interface SweepResult {
  /** Batches whose state differs from what their shard last saw. */
  changed: BatchView[];
  /** Watched batches no listing returned (their shards' own fallback reads them). */
  unseen: string[];
  /** The provider has no batch list: the watched shards must poll their batches themselves. */
  listUnavailable?: boolean;
  listCalls: number;
}

/** The watcher's workflow task timeout (its continue-as-new runs keep it). */
const WATCHER_TASK_TIMEOUT = '1 minute';

/** Statuses of a batch that has not ended: DashScope's `status` filter keeps only these. */
const UNFINISHED = ['validating', 'in_progress', 'finalizing', 'cancelling'];
const PAGE = 100;
/** DashScope's input_file_ids filter takes at most 20 ids. */
const FILE_IDS_PER_CALL = 20;
/**
 * DashScope does not say in which time zone it reads `create_after`; a day's margin keeps the
 * bound safe whatever it is, at the price of also listing the account's other unfinished batches
 * of that day.
 */
const CREATE_AFTER_MARGIN_SECONDS = 86_400;

/**
 * The watcher's sweep period as its memo holds it; none when it has not swept yet, is not running
 * or cannot be described (the shard then uses its poll interval's fallback, as before any sweep).
 */
async function sweepPeriodOf(client: Client, workflowId: string): Promise<number | undefined> {
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    if (d.status.name !== 'RUNNING') return undefined;
    const v = d.memo?.[SWEEP_PERIOD_MEMO];
    return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

/** `yyyyMMddHHmmss` in UTC, DashScope's format for `create_after`. */
function stamp(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * The activities of polling by listing (the watcher's sweep and a shard's registration), built on the worker's dependencies. Long as a whole, not as a unit: each
 * inner function is one activity or one named step of one, sharing what this closure holds.
 */
export function watchActivities(deps: ActivityDeps) {
  // List calls leave this process evenly at the list class's paced rate. One watcher per task
  // queue makes one sweep at a time, so this is also the fleet's rate of sweep list calls.
  const turns = new Spacer(deps.listsPerSecond);

  /**
   * Pages through `query` (newest first) until `enough` says so or the pages end, spacing the calls;
   * hands every batch to `take`. Returns the number of list calls made.
   */
  async function pages(
    query: Record<string, unknown>,
    take: (b: OpenAI.Batches.Batch) => void,
    enough: (last: OpenAI.Batches.Batch | undefined) => boolean,
  ): Promise<number> {
    await turns.turn(signal());
    let page = await deps.openai.batches.list(query, {
      signal: signal(),
    });
    let calls = 1;
    for (;;) {
      for (const b of page.data) take(b);
      Context.current().heartbeat(calls);
      if (enough(page.data.at(-1)) || !page.hasNextPage()) return calls;
      await turns.turn(signal());
      page = await page.getNextPage();
      calls++;
    }
  }

  return {
    /**
     * Adds a batch to the task queue's watcher, starting the watcher if none runs. Returns the
     * watcher's sweep period (from its memo; none before its first sweep), which the registration
     * carries too: the shard sets its fallback timer by it.
     */
    async registerWatch(input: {
      taskQueue: string;
      registration: WatchRegistration;
    }): Promise<{ sweepPeriodMs?: number }> {
      const client = Context.current().client;
      const workflowId = watcherWorkflowId(input.taskQueue);
      const sweepPeriodMs = await sweepPeriodOf(client, workflowId);
      const told = sweepPeriodMs !== undefined ? { sweepPeriodMs } : {};
      await client.workflow.signalWithStart(WATCHER_WORKFLOW, {
        workflowId,
        taskQueue: input.taskQueue,
        args: [{ taskQueue: input.taskQueue }],
        // Every shard in flight depends on this one workflow: on a worker busy with thousands of
        // shards, its tasks (a large history to replay after an eviction, a sweep's wakes) may wait
        // in the worker longer than the default 10 s, and each timeout stalls every shard's news.
        workflowTaskTimeout: WATCHER_TASK_TIMEOUT,
        signal: WATCH_SIGNAL,
        signalArgs: [{ ...input.registration, ...told }],
      });
      return told;
    },

    /**
     * Lists the watched batches' states: on DashScope, the unfinished batches since the oldest
     * watched one (status and create_after filters), then the rest, which ended since the last
     * sweep, by input_file_ids 20 at a time; elsewhere newest-first pages until every watched
     * batch is seen or the pages are older than the oldest. Returns only what changed.
     */
    async sweepBatches(input: { batches: SweepBatch[] }): Promise<SweepResult> {
      const want = new Map(input.batches.map((b) => [b.id, b]));
      const found = new Map<string, OpenAI.Batches.Batch>();
      const take = (b: OpenAI.Batches.Batch) => {
        if (want.has(b.id)) found.set(b.id, b);
      };
      const allSeen = () => found.size === want.size;
      const oldest = Math.min(...input.batches.map((b) => b.createdAt));
      let listCalls = 0;
      try {
        if (input.batches.length === 0) return { changed: [], unseen: [], listCalls };
        if (deps.profile.listFilters) {
          const query = {
            status: UNFINISHED.join(','),
            create_after: stamp(oldest - CREATE_AFTER_MARGIN_SECONDS),
            limit: PAGE,
          };
          listCalls += await pages(query, take, allSeen);
          const ended = input.batches.filter((b) => !found.has(b.id));
          for (let i = 0; i < ended.length; i += FILE_IDS_PER_CALL) {
            const fileIds = ended.slice(i, i + FILE_IDS_PER_CALL).map((b) => b.fileId);
            listCalls += await pages({ input_file_ids: fileIds.join(','), limit: PAGE }, take, allSeen);
          }
        } else {
          listCalls += await pages(
            { limit: PAGE },
            take,
            (last) => allSeen() || (last !== undefined && last.created_at < oldest - SKEW_SECONDS),
          );
        }
      } catch (err) {
        if (!listMissing(err)) throw failureOf(deps, err, 'list batches');
        logFor(deps).warn(
          { status: statusOf(err), url: publicUrl(deps.openai.baseURL) },
          `the provider has no batch list (answered ${statusOf(err)}): each shard polls its own batch`,
        );
        return { changed: [], unseen: [...want.keys()], listUnavailable: true, listCalls: listCalls + 1 };
      }
      count('polls', listCalls);
      const changed: BatchView[] = [];
      for (const [id, b] of found) {
        const view = toView(b);
        if (watchFingerprint(view) !== want.get(id)!.seen) changed.push(view);
      }
      const unseen = [...want.keys()].filter((id) => !found.has(id));
      return { changed, unseen, listCalls };
    },
  };
}
