// The problems found on one line, collected while its rules run: the first code, and every message
// (the report joins them with "; "). One collector is reused from line to line.

export class LineProblems {
  /** The code of the first problem, or ''. */
  code = '';
  readonly messages: string[] = [];

  add(code: string, message: string): void {
    if (!this.code) this.code = code;
    this.messages.push(message);
  }

  get found(): boolean {
    return this.messages.length > 0;
  }

  reset(): void {
    this.messages.length = 0;
    this.code = '';
  }
}
