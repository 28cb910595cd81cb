// Progress of a plan, for the caller's callback (the plan activity heartbeats with it): about once a
// second while reading, and once at the end.

export interface PlanProgress {
  bytesRead: number;
  linesRead: number;
}

export class ProgressThrottle {
  private readonly onProgress: ((p: PlanProgress) => void) | undefined;
  private last = 0;

  constructor(onProgress: ((p: PlanProgress) => void) | undefined) {
    this.onProgress = onProgress;
  }

  /** Calls back with `read()` when a second has passed since the last call, or when `final`. */
  report(final: boolean, read: () => PlanProgress): void {
    const cb = this.onProgress;
    if (!cb) return;
    const now = Date.now();
    if (!final && now - this.last < 1000) return;
    this.last = now;
    cb(read());
  }
}
