// File-level validation as the provider does it before a batch runs (docs/providers.md, Batches):
// every bad line is reported, one entry each, with its 1-based line number. The emulator's
// own rules, on purpose not the planner's: a mistake shared by both would never be caught.
import { promptTokensOf } from './answers.ts';
import type { EmulatorLimits } from './limits.ts';
import { TEST_ENDPOINT, TEST_MODEL, modelExists, thinksByDefault } from './limits.ts';
import { readLines } from './lines.ts';
import type { BatchError } from './objects.ts';

export interface ValidationContext {
  endpoint: string;
  limits: EmulatorLimits;
  fileBytes: number;
}

export interface ValidationResult {
  lines: number;
  errors: BatchError[];
  /** The file's model (of its first valid line), for the enqueued-token limit. */
  model?: string;
  /** Input tokens of the valid lines, counted as usage counts them. */
  inputTokens: number;
}

const MAX_CUSTOM_ID = 256;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function problem(
  line: number | null,
  code: string,
  message: string,
  param: string | null = null,
): BatchError {
  return { code, message, param, line };
}

function isBlank(text: Buffer): boolean {
  return text.every((b) => b === 0x20 || b === 0x09 || b === 0x0d);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The request's method and url: POST to the batch's endpoint. */
function envelopeProblem(
  lineNo: number,
  row: Record<string, unknown>,
  ctx: ValidationContext,
): BatchError | null {
  if (row.method === undefined) {
    return problem(lineNo, 'missing_required_parameter', 'method is required', 'method');
  }
  if (row.method !== 'POST') return problem(lineNo, 'invalid_method', 'method must be POST', 'method');
  if (row.url === undefined) return problem(lineNo, 'missing_required_parameter', 'url is required', 'url');
  if (row.url !== ctx.endpoint) {
    return problem(lineNo, 'invalid_url', `url must be the batch endpoint ${ctx.endpoint}`, 'url');
  }
  return null;
}

/** The body on its own: a known model, the endpoint's payload, no streaming. */
function bodyProblem(
  lineNo: number,
  body: Record<string, unknown>,
  ctx: ValidationContext,
): BatchError | null {
  const needs = ctx.endpoint === '/v1/embeddings' ? 'input' : 'messages';
  const model = body.model;
  if (typeof model !== 'string' || model === '') {
    return problem(lineNo, 'missing_required_parameter', 'body.model is required', 'body.model');
  }
  if (!modelExists(model))
    return problem(lineNo, 'model_not_found', `model ${model} does not exist`, 'body.model');
  if (ctx.endpoint === TEST_ENDPOINT && model !== TEST_MODEL) {
    return problem(lineNo, 'model_not_found', `${TEST_ENDPOINT} serves only ${TEST_MODEL}`, 'body.model');
  }
  const payload = body[needs];
  if (payload === undefined || payload === null || (Array.isArray(payload) && payload.length === 0)) {
    return problem(lineNo, 'missing_required_parameter', `body.${needs} is required`, `body.${needs}`);
  }
  if (body.stream === true) {
    return problem(
      lineNo,
      'streaming_unsupported',
      'stream: true is not supported in a batch',
      'body.stream',
    );
  }
  return null;
}

/**
 * A checker for one file's lines, in order. It remembers the file's model, thinking mode and the
 * custom_ids seen (bounded by the line limit, after which lines are no longer checked).
 */
export function createLineChecker(
  ctx: ValidationContext,
  onValid: (body: Record<string, unknown>) => void = () => undefined,
): (lineNo: number, text: Buffer | null) => BatchError | null {
  const seen = new Set<string>();
  let fileModel: { model: string; thinking: boolean } | undefined;
  return (lineNo, text) => {
    if (text === null) {
      return problem(lineNo, 'line_too_large', `line ${lineNo} is over ${ctx.limits.maxLineBytes} bytes`);
    }
    let row: unknown;
    try {
      row = JSON.parse(utf8.decode(text));
    } catch {
      return problem(lineNo, 'invalid_json_line', `line ${lineNo} is not valid UTF-8 JSON`);
    }
    if (!isObject(row)) return problem(lineNo, 'invalid_json_line', `line ${lineNo} is not a JSON object`);
    const id = row.custom_id;
    if (typeof id !== 'string' || id === '') {
      return problem(lineNo, 'missing_required_parameter', 'custom_id is required', 'custom_id');
    }
    const duplicate = seen.has(id);
    seen.add(id);
    if (id.length > MAX_CUSTOM_ID) {
      return problem(
        lineNo,
        'invalid_custom_id',
        `custom_id is over ${MAX_CUSTOM_ID} characters`,
        'custom_id',
      );
    }
    const envelope = envelopeProblem(lineNo, row, ctx);
    if (envelope) return envelope;
    const body = row.body;
    if (!isObject(body)) return problem(lineNo, 'missing_required_parameter', 'body is required', 'body');
    const invalid = bodyProblem(lineNo, body, ctx);
    if (invalid) return invalid;
    const model = body.model as string;
    const thinking =
      typeof body.enable_thinking === 'boolean' ? body.enable_thinking : thinksByDefault(model);
    fileModel ??= { model, thinking };
    if (model !== fileModel.model) {
      return problem(
        lineNo,
        'mismatched_model',
        `model ${model} differs from the file's ${fileModel.model}`,
        'body.model',
      );
    }
    if (thinking !== fileModel.thinking) {
      return problem(
        lineNo,
        'mismatched_model',
        `enable_thinking ${thinking} differs from the file's ${fileModel.thinking}`,
        'body.enable_thinking',
      );
    }
    if (duplicate)
      return problem(lineNo, 'duplicate_custom_id', `custom_id ${id} is used twice`, 'custom_id');
    onValid(body);
    return null;
  };
}

/** Streams the input file once and returns its line count and every problem found. */
export async function validateInputFile(
  file: string,
  ctx: ValidationContext,
  shouldStop: () => boolean = () => false,
): Promise<ValidationResult | null> {
  const isTest = ctx.endpoint === TEST_ENDPOINT;
  const maxLines = isTest ? ctx.limits.testMaxLines : ctx.limits.maxLines;
  let model: string | undefined;
  let inputTokens = 0;
  const check = createLineChecker(ctx, (body) => {
    model ??= String(body.model);
    inputTokens += promptTokensOf(ctx.endpoint, body);
  });
  const errors: BatchError[] = [];
  let lines = 0;
  let nonBlank = 0;
  for await (const line of readLines(file, { maxLineBytes: ctx.limits.maxLineBytes })) {
    lines++;
    if (lines % 1000 === 0 && shouldStop()) return null;
    if (lines > maxLines) continue; // counted only: past the limit the file is refused as a whole
    if (line.text !== null && isBlank(line.text)) {
      errors.push(problem(lines, 'invalid_json_line', `line ${lines} is empty`));
      continue;
    }
    nonBlank++;
    const err = check(lines, line.text);
    if (err) errors.push(err);
  }
  if (nonBlank === 0)
    return { lines, errors: [problem(null, 'empty_file', 'the input file has no requests')], inputTokens };
  if (lines > maxLines) {
    errors.push(
      problem(null, 'too_many_tasks', `the file has ${lines} lines; at most ${maxLines} per batch`),
    );
  }
  if (isTest && ctx.fileBytes > ctx.limits.testMaxBytes) {
    errors.push(
      problem(
        null,
        'file_too_large',
        `${TEST_ENDPOINT} takes at most ${ctx.limits.testMaxBytes} bytes per file`,
      ),
    );
  }
  return { lines, errors, inputTokens, ...(model !== undefined ? { model } : {}) };
}
