// Keeps an activity's heartbeat going while it waits on one long call (an upload, a download), so a
// dead worker is noticed within the heartbeat timeout instead of the whole start-to-close timeout.
import { Context } from '@temporalio/activity';

export async function withHeartbeat<T>(fn: () => Promise<T>, everyMs = 5000): Promise<T> {
  let ctx: Context | undefined;
  try {
    ctx = Context.current();
  } catch {
    return fn();
  }
  const timer = setInterval(() => ctx.heartbeat(), everyMs);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}
