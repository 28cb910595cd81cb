// Spaces one process's calls of a call class evenly, at most `perSecond`. The fleet's rate is kept
// by Temporal's server (common/rate-limits.ts); this keeps a worker from sending what it was given
// in a bunch, which happens where activities queue inside the worker before calling (the upload
// semaphore releases several at once when uploads end together).

/** Waits `ms`, or rejects when `signal` aborts (the activity was cancelled). */
function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class Spacer {
  readonly #gapMs: number;
  #next = 0;

  constructor(perSecond: number | undefined) {
    this.#gapMs = perSecond !== undefined && perSecond > 0 ? 1000 / perSecond : 0;
  }

  /** Resolves when this call may go: at least the gap after the one before it. */
  async turn(signal?: AbortSignal): Promise<void> {
    if (this.#gapMs === 0) return;
    const now = Date.now();
    const at = Math.max(now, this.#next);
    this.#next = at + this.#gapMs;
    if (at > now) await wait(at - now, signal);
  }
}
