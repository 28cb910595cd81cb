import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.ts';

describe('createLogger', () => {
  it('writes JSON lines with keys, authorization headers and request bodies redacted', () => {
    let out = '';
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const log = createLogger({ level: 'info', destination });
    log.info(
      {
        apiKey: 'sk-1',
        request: { headers: { authorization: 'Bearer sk-2' }, body: { messages: ['secret prompt'] } },
      },
      'calling',
    );
    log.child({ component: 'x' }).info({ config: { api_key: 'sk-3' }, messages: ['another prompt'] }, 'more');
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]!.msg).toBe('calling');
    for (const secret of ['sk-1', 'sk-2', 'sk-3', 'secret prompt', 'another prompt'])
      expect(out).not.toContain(secret);
    expect(out).toContain('[redacted]');
  });
});
