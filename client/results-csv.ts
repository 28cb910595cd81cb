// results.jsonl → results.csv (custom_id,status_code,content,usage), streamed, RFC 4180 quoting.
import { readLines } from '../activities/lines.ts';
import { AtomicWriter } from '../storage/atomic-file.ts';

export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

interface ResultLine {
  custom_id: string;
  response?: {
    status_code?: number;
    body?: { choices?: { message?: { content?: unknown } }[]; data?: unknown; usage?: unknown };
  } | null;
}

/** The answer text of a chat result, or the JSON of an embeddings result. */
export function contentOf(r: ResultLine): string {
  const body = r.response?.body;
  const content = body?.choices?.[0]?.message?.content;
  if (typeof content === 'string') return content;
  if (body?.data !== undefined) return JSON.stringify(body.data);
  return '';
}

export async function writeResultsCsv(resultsJsonl: string, csvFile: string): Promise<number> {
  const w = new AtomicWriter(csvFile);
  await w.writeLine('custom_id,status_code,content,usage');
  let rows = 0;
  for await (const line of readLines(resultsJsonl)) {
    const r = JSON.parse(line.text) as ResultLine;
    const usage = r.response?.body?.usage !== undefined ? JSON.stringify(r.response.body.usage) : '';
    await w.writeLine(
      [
        csvField(r.custom_id),
        String(r.response?.status_code ?? ''),
        csvField(contentOf(r)),
        csvField(usage),
      ].join(','),
    );
    rows++;
  }
  await w.commit();
  return rows;
}
