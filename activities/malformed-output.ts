// A provider's output or error file can hold a line that is not a result line: cut short, not
// JSON, or JSON naming no request (a file damaged in transit, a server's bug). Such a line must not
// stop collection (it would throw on every attempt, and the activity has no attempt limit), and its
// request must still end in exactly one place. So:
//  - a line whose custom_id can still be read (a line cut after it) fails that request for good,
//    with a reason quoting the start of what came: the provider ran the request, and sending it
//    again would pay for it twice;
//  - a line whose custom_id cannot be read explains a line the unit is left missing: when there are
//    no more missing lines than such lines, each missing line fails for good the same way; when
//    there are more (an expired batch also left lines out), which were run cannot be told, and the
//    missing lines are sent again as missing lines always are, their reason naming the damage.
// docs/providers.md (Result lines) says the same for users.
import type { Classified } from './classify.ts';

/** Characters of a malformed line quoted in its reason: enough to recognise it, never a whole body. */
const EXCERPT_CHARS = 200;

/** The code of a request whose result line the provider garbled. */
export const MALFORMED_OUTPUT = 'malformed_output';

/** A line of a provider's result file: its JSON object, or what can be said of a malformed one. */
export type ResultFileLine =
  | { ok: true; parsed: Record<string, unknown> }
  | { ok: false; customId: string | undefined; excerpt: string };

/** The start of a line, quoted, for a reason text. */
function excerptOf(bytes: Buffer): string {
  const cut = bytes.length > EXCERPT_CHARS * 4;
  const text = bytes.toString('utf8', 0, Math.min(bytes.length, EXCERPT_CHARS * 4));
  const head = text.length > EXCERPT_CHARS ? text.slice(0, EXCERPT_CHARS) : text;
  return JSON.stringify(head) + (cut || head.length < text.length ? '…' : '');
}

/** The first `"custom_id":"…"` in a line that is not JSON (one cut short keeps it near its start). */
function salvageCustomId(text: string): string | undefined {
  const m = /"custom_id"\s*:\s*("(?:[^"\\]|\\.)*")/.exec(text);
  if (!m) return undefined;
  try {
    return JSON.parse(m[1]!) as string;
  } catch {
    return undefined;
  }
}

/** Whether an object without a custom_id still reads as a result (an error line naming no request). */
function hasEnvelope(o: Record<string, unknown>): boolean {
  return (!!o.response && typeof o.response === 'object') || (!!o.error && typeof o.error === 'object');
}

/** Reads one line of a provider's output or error file. */
export function readResultFileLine(bytes: Buffer): ResultFileLine {
  const text = bytes.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, customId: salvageCustomId(text), excerpt: excerptOf(bytes) };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    return { ok: false, customId: undefined, excerpt: excerptOf(bytes) };
  const o = parsed as Record<string, unknown>;
  if (typeof o.custom_id !== 'string' && !hasEnvelope(o))
    return { ok: false, customId: undefined, excerpt: excerptOf(bytes) };
  return { ok: true, parsed: o };
}

/** The outcome of a request whose own result line came malformed. */
export function malformedLine(excerpt: string): Classified {
  return {
    kind: 'permanent',
    error: {
      code: MALFORMED_OUTPUT,
      message: `the provider returned malformed output for this line: ${excerpt}`,
      status_code: null,
    },
    usage: null,
  };
}

/** What unreadable lines mean for a line with no result: see the top of this file. */
export function missingAmidUnreadable(
  missing: Classified,
  missingCount: number,
  unreadable: { count: number; first: string },
): Classified {
  const what = `the provider returned ${unreadable.count} malformed output line(s) whose custom_id could not be read (the first: ${unreadable.first})`;
  if (missingCount <= unreadable.count)
    return {
      kind: 'permanent',
      error: { code: MALFORMED_OUTPUT, message: `${what}, and no result for this line`, status_code: null },
      usage: null,
    };
  const error = missing.error && { ...missing.error, message: `${missing.error.message}; ${what}` };
  return { ...missing, error };
}
