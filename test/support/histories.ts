// Recorded histories for test/replay: written by integration tests run with RECORD_HISTORIES=1.
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';

export const HISTORIES = path.join(import.meta.dirname, '..', 'histories');

type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;

export interface Recorded {
  file: string;
  workflowId: string;
  history: History;
}

/** The first run of a workflow id's chain (fresh start) and its latest. */
export async function firstAndLast(client: Client, workflowId: string): Promise<[History, History]> {
  const last = client.workflow.getHandle(workflowId);
  const firstRunId = (await last.describe()).raw.workflowExecutionInfo?.firstRunId ?? undefined;
  const first = client.workflow.getHandle(workflowId, firstRunId);
  return [await first.fetchHistory(), await last.fetchHistory()];
}

/**
 * Writes the histories into test/histories and their entries into index.json (replacing entries of
 * the same file, keeping the others): child ids derive from the job id, so replay needs the ids.
 */
export function recordHistories(recorded: Recorded[]): void {
  fs.mkdirSync(HISTORIES, { recursive: true });
  const indexFile = path.join(HISTORIES, 'index.json');
  const index = fs.existsSync(indexFile)
    ? (JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { file: string; workflowId: string }[])
    : [];
  for (const { file, workflowId, history } of recorded) {
    fs.writeFileSync(path.join(HISTORIES, file), historyToJSON(history));
    const at = index.findIndex((e) => e.file === file);
    if (at >= 0) index.splice(at, 1);
    index.push({ file, workflowId });
  }
  fs.writeFileSync(indexFile, JSON.stringify(index, null, 2) + '\n');
}
