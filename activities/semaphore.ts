// At most `permits` calls of `run` at once in this process; the others wait in order.
export class Semaphore {
  private readonly permits: number;
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(permits: number) {
    this.permits = permits;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.permits) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
