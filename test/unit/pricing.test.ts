import { describe, expect, it } from 'vitest';
import { costOf, parsePriceTable } from '../../common/pricing.ts';

describe('pricing', () => {
  const prices = parsePriceTable({ currency: 'USD', models: { 'qwen-plus': { input: 0.4, output: 1.2 } } });
  it('charges per million tokens at the batch discount (50% by default)', () => {
    const cost = costOf(
      { 'qwen-plus': { prompt_tokens: 1_000_000, completion_tokens: 500_000, total_tokens: 1_500_000 } },
      prices,
    );
    expect(cost).toEqual({ currency: 'USD', total: 0.5, byModel: { 'qwen-plus': 0.5 }, unpriced: [] });
  });
  it('names models without a price instead of guessing', () => {
    const cost = costOf(
      { 'qwen-max': { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 } },
      prices,
    );
    expect(cost.total).toBe(0);
    expect(cost.unpriced).toEqual(['qwen-max']);
  });
  it('explains a malformed table', () => {
    expect(() => parsePriceTable({ currency: 'USD', models: { 'qwen-plus': { input: 'cheap' } } })).toThrow(
      /models.qwen-plus/,
    );
    expect(() => parsePriceTable({ models: {} })).toThrow(/currency/);
    expect(() => parsePriceTable({ currency: 'USD', batchDiscount: 2, models: {} })).toThrow(/batchDiscount/);
  });
});
