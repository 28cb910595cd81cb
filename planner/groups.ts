// The plan's groups: one per (model, thinking mode) among accepted lines, numbered in the order
// their first line came. Shards never mix groups (shards.ts); the report lists each with its
// counts, and warns about models that think by default when their lines leave thinking unset.
import { parseGroupKey } from './chunk.ts';
import { thinksByDefault } from './line.ts';
import type { PlanReport, PlanWarning } from './types.ts';

export interface Group {
  model: string;
  thinking: boolean | null;
  lines: number;
  bytes: number;
  firstLine: number;
}

export class Groups {
  /** By group number; the planner counts each accepted line into its group. */
  readonly list: Group[] = [];
  private readonly numbers = new Map<string, number>();

  /** The number of the group of `key` (chunk.ts, groupKey), made when its first line is `line`. */
  numberOf(key: string, line: number): number {
    let g = this.numbers.get(key);
    if (g === undefined) {
      g = this.list.length;
      this.numbers.set(key, g);
      this.list.push({ ...parseGroupKey(key), lines: 0, bytes: 0, firstLine: line });
    }
    return g;
  }

  /** One `thinking_unset` warning per model that thinks by default and had lines leave it unset. */
  warnings(): PlanWarning[] {
    const warnings: PlanWarning[] = [];
    for (const g of this.list) {
      if (g.thinking === null && thinksByDefault(g.model)) {
        warnings.push({
          line: g.firstLine,
          code: 'thinking_unset',
          message: `${g.lines} line${g.lines === 1 ? '' : 's'} for ${g.model} leave${g.lines === 1 ? 's' : ''} body.enable_thinking unset (first: line ${g.firstLine}): ${g.model} thinks by default and thinking tokens are billed as output; set "enable_thinking" in body, or pass --thinking on|off`,
        });
      }
    }
    return warnings;
  }

  summary(): PlanReport['groups'] {
    return this.list.map(({ model, thinking, lines, bytes }) => ({ model, thinking, lines, bytes }));
  }
}
