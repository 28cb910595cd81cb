// The planner's own error: the input cannot be read as asked (missing, a directory, a CSV without
// the columns it needs). Never retried; the CLI prints it and exits 2 (a usage error: fix the call).
// Bad lines are not errors: they are reported, one problem each, and the rest goes on.

/** Thrown when the input as a whole cannot be planned; the message says what to fix. */
export class InputError extends Error {
  override name = 'InputError';
}
