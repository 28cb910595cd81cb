// Cost of a job from its token usage and a user's price table (`--prices prices.json`): prices are
// per million tokens at the provider's list price; the batch discount (50% for DashScope and
// OpenAI batches) applies on top. Pure: the job workflow computes the summary's cost with it, and
// `plan --prices` the estimate before anything is sent.

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface PriceTable {
  currency: string;
  /** Fraction of the list price paid for batch requests; 0.5 when unset. */
  batchDiscount?: number;
  /**
   * Fraction of the list price paid for the synchronous requests a `--deadline` falls back to; 1
   * (the list price) when unset. DashScope bills its Batch Chat API at the batch price: 0.5 there.
   */
  syncDiscount?: number;
  /** Per model: list price per million input and output tokens. */
  models: Record<string, { input: number; output: number }>;
}

export interface Cost {
  currency: string;
  total: number;
  byModel: Record<string, number>;
  /** Models that had usage but no price: their cost is not in the total. */
  unpriced: string[];
}

/** Validates a parsed prices.json; the error names the field and the expected shape. */
export function parsePriceTable(value: unknown): PriceTable {
  const fail = (what: string): never => {
    throw new Error(
      `prices: ${what}; expected {"currency":"USD","batchDiscount":0.5,"models":{"qwen-plus":{"input":0.4,"output":1.2}}}`,
    );
  };
  if (!value || typeof value !== 'object') return fail('not a JSON object');
  const v = value as Record<string, unknown>;
  if (typeof v.currency !== 'string' || !v.currency) fail('"currency" must be a string');
  if (
    v.batchDiscount !== undefined &&
    (typeof v.batchDiscount !== 'number' || v.batchDiscount < 0 || v.batchDiscount > 1)
  ) {
    fail('"batchDiscount" must be a number from 0 to 1');
  }
  if (
    v.syncDiscount !== undefined &&
    (typeof v.syncDiscount !== 'number' || v.syncDiscount < 0 || v.syncDiscount > 1)
  ) {
    fail('"syncDiscount" must be a number from 0 to 1');
  }
  if (!v.models || typeof v.models !== 'object') return fail('"models" must be an object');
  for (const [model, p] of Object.entries(v.models as Record<string, unknown>)) {
    const price = p as Record<string, unknown> | null;
    if (
      !price ||
      typeof price.input !== 'number' ||
      typeof price.output !== 'number' ||
      price.input < 0 ||
      price.output < 0
    ) {
      fail(`"models.${model}" needs non-negative numbers "input" and "output" (per million tokens)`);
    }
  }
  return v as unknown as PriceTable;
}

export function costOf(usageByModel: Record<string, Usage>, prices: PriceTable): Cost {
  const factor = prices.batchDiscount ?? 0.5;
  const byModel: Record<string, number> = {};
  const unpriced: string[] = [];
  let total = 0;
  for (const [model, u] of Object.entries(usageByModel)) {
    const p = prices.models[model];
    if (!p) {
      unpriced.push(model);
      continue;
    }
    const cost = ((u.prompt_tokens * p.input + u.completion_tokens * p.output) / 1_000_000) * factor;
    byModel[model] = Math.round(cost * 1e6) / 1e6;
    total += cost;
  }
  return { currency: prices.currency, total: Math.round(total * 1e6) / 1e6, byModel, unpriced };
}

/** Tokens a plan expects per model: estimated input tokens and the request lines that carry them. */
export interface PlannedTokens {
  inputTokens: number;
  lines: number;
}

export interface CostEstimate {
  /** Completion tokens assumed per line (0: input only; answers are billed on top). */
  outputTokensPerLine: number;
  /** At the batch price (the table's batchDiscount). */
  batch: Cost;
  /** Worst case: every request sent synchronously (list price, or the table's syncDiscount). */
  synchronous: Cost;
}

/**
 * The cost of a plan before anything is sent: its estimated input tokens, plus `outputTokensPerLine`
 * for each line's answer when the user says how long answers run (output is otherwise unknown then).
 */
export function estimateCost(
  planned: Record<string, PlannedTokens>,
  prices: PriceTable,
  outputTokensPerLine = 0,
): CostEstimate {
  const usage: Record<string, Usage> = {};
  for (const [model, p] of Object.entries(planned)) {
    const completion = p.lines * outputTokensPerLine;
    usage[model] = {
      prompt_tokens: p.inputTokens,
      completion_tokens: completion,
      total_tokens: p.inputTokens + completion,
    };
  }
  return {
    outputTokensPerLine,
    batch: costOf(usage, prices),
    synchronous: costOf(usage, { ...prices, batchDiscount: prices.syncDiscount ?? 1 }),
  };
}
