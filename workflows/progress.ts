// Progress arithmetic and the Web UI table: pure, shared by the job workflow and its tests.
import type { JobProgress, UnitProgress } from '../common/job-types.ts';

/** A markdown table for `setCurrentDetails`: the job at a glance in the Temporal Web UI. */
export function progressTable(p: JobProgress, maxRows = 50): string {
  const l = p.lines;
  const head = [
    `**${p.phase}** — round ${p.round} — ${l.succeeded + l.failed}/${l.valid} lines done (${l.succeeded} ok, ${l.failed} failed, ${l.rejected} rejected, ${l.pendingRetry} to retry)`,
    `${p.input} → ${p.outDir} — ${l.total} lines, ${p.shards.length} shards this round, models: ${p.models.join(', ') || '…'}`,
    '',
    '| shard | round | status | batch | lines | done | ok | failed | retry |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const active = p.shards.filter((s) => s.status !== 'done' && s.status !== 'pending');
  const rest = p.shards.filter((s) => s.status === 'done' || s.status === 'pending');
  const rows = [...active, ...rest].slice(0, maxRows).map(row);
  const more = p.shards.length > maxRows ? [`| … ${p.shards.length - maxRows} more | | | | | | | | |`] : [];
  return [...head, ...rows, ...more].join('\n');
}

function row(s: UnitProgress): string {
  return `| ${s.index} | ${s.round} | ${s.status} | ${s.batchId ?? ''} | ${s.lines} | ${s.completed} | ${s.succeeded} | ${s.failed} | ${s.retry} |`;
}
