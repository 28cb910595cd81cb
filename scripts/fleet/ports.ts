// Free TCP ports on the loopback interface. Temporal keeps membership ports in a smallint column,
// so those come from a range at most 32767 (below Linux's ephemeral range, which starts at 32768).
import net from 'node:net';
import { freePort } from '../../worker/dev-server.ts';

export const MAX_MEMBERSHIP_PORT = 32767;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port the kernel picks (from the ephemeral range). */
export const anyFreePort = freePort;

const taken = new Set<number>();

/** A free port in [low, high], never one this process handed out before. */
export async function freePortIn(low: number, high: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (taken.has(port)) continue;
    if (await canListen(port)) {
      taken.add(port);
      return port;
    }
  }
  throw new Error(`no free port between ${low} and ${high} on 127.0.0.1`);
}

/** A free port for a Temporal membership (ringpop) listener: at most 32767. */
export const freeMembershipPort = () => freePortIn(20_000, MAX_MEMBERSHIP_PORT);
