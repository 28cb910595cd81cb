// The emulator's own endpoints: counters for tests (`GET /_emulator/stats`) and fault settings
// replaced at run time (`POST /_emulator/faults`, until the emulator stops).
import type { Handler } from './context.ts';
import { parseFaultSettings } from './faults.ts';
import { HttpError, readJson } from './http.ts';

export const stats: Handler = ({ state }) => ({ status: 200, body: state.store.stats() });

export const getFaults: Handler = ({ state }) => ({ status: 200, body: state.faults() });

export const setFaults: Handler = async ({ req, state }) => {
  let settings;
  try {
    settings = parseFaultSettings(await readJson(req));
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, (err as Error).message, { code: 'invalid_value' });
  }
  return { status: 200, body: state.setFaults(settings) };
};
