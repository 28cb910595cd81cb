// The process's stores (storage/workspace.ts), kept on the activities' dependencies so that every
// activity of a worker shares one S3 client and its socket pool.
import { Stores } from '../storage/workspace.ts';
import type { ActivityDeps } from './deps.ts';

export function storesOf(deps: ActivityDeps): Stores {
  return (deps.stores ??= new Stores(deps.scratchDir ? { scratchDir: deps.scratchDir } : {}));
}
