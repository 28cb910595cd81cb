// Cursor pages as both providers serve them: `after` (an object id), `limit`, `has_more`. The
// cursor is the object's creation order, so it still works when the `after` object itself is
// filtered out or deleted meanwhile.
import { HttpError } from './http.ts';

export interface Page<T> {
  object: 'list';
  data: T[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

export interface PageOptions {
  defaultLimit: number;
  maxLimit: number;
  /** Creation order of an object named by `after`; undefined when there is no such object. */
  seqOf: (id: string) => number | undefined;
  descending: boolean;
}

/** One page of `items` (already filtered and ordered by seq) after the `after` id. */
export function pageOf<S extends { seq: number }, T extends { id: string }>(
  items: S[],
  url: URL,
  view: (item: S) => T,
  opts: PageOptions,
): Page<T> {
  const limitText = url.searchParams.get('limit');
  const limit = limitText === null || limitText === '' ? opts.defaultLimit : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > opts.maxLimit) {
    throw new HttpError(400, `limit must be a whole number from 1 to ${opts.maxLimit}`, {
      code: 'invalid_value',
      param: 'limit',
    });
  }
  let rest = items;
  const after = url.searchParams.get('after');
  if (after) {
    const seq = opts.seqOf(after);
    if (seq === undefined) {
      throw new HttpError(400, `after: no such object ${after}`, { code: 'invalid_value', param: 'after' });
    }
    rest = items.filter((i) => (opts.descending ? i.seq < seq : i.seq > seq));
  }
  const data = rest.slice(0, limit).map(view);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: rest.length > limit,
  };
}
