// Input tokens estimated before anything is sent, from the bytes of the request lines: about four
// characters a token, the providers' own rule of thumb. No tokenizer: each model family has its own
// (Qwen's is not OpenAI's), the estimate only steers admission and cost previews, and a batch the
// provider refuses anyway waits and is resubmitted. It counts the JSON envelope too (roughly 25
// tokens a line), so for Latin text it errs high; CJK text (3 UTF-8 bytes a character, often a token
// or more each) it can undercount by a third: leave headroom under the provider's limit there.

/** Estimated input tokens of request lines totalling `bytes` (newlines included). */
export function estimateTokens(bytes: number): number {
  return Math.ceil(bytes / 4);
}

/** A unit's model and estimated input tokens: what admission by tokens needs to know of it. */
export interface UnitTokens {
  model: string;
  tokens: number;
}
