// CSV input: a streamed RFC 4180 reader (quotes, doubled quotes, commas and newlines inside quotes,
// CRLF, BOM) and the conversion to requests the way the providers' converter does it.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../planner/index.ts';
import { ENDPOINT, plan, readPlan, tmpDir } from './helpers.ts';

const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const CSV = { idColumn: 'id', promptColumn: 'question', model: 'qwen-plus', system: 'Be brief.' };

function write(name: string, text: string | Buffer): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, text);
  return file;
}

describe('CSV input', () => {
  it('converts each row to a chat request, with quotes, commas and newlines inside fields', async () => {
    const input = write(
      'q.csv',
      '\ufeffid,question,other\r\n' +
        'q1,"Hello, world",x\r\n' +
        '\r\n' +
        'q2,"She said ""hi""\non two lines",y\n' +
        'q3,plain 中文,z\n' +
        'q1,duplicate id,z\n',
    );
    const outDir = path.join(work, 'q');
    const report = await plan(input, outDir, { csv: CSV });
    expect(report).toMatchObject({ lines: 4, valid: 3, rejected: 1 });
    expect(report.problems).toEqual([
      expect.objectContaining({ line: 7, code: 'duplicate_custom_id', custom_id: 'q1' }),
    ]);
    expect(report.problems[0]!.message).toContain('line 2');
    const onDisk = readPlan(outDir);
    expect(onDisk.shards[0]!.nums).toEqual([2, 4, 6]);
    const requests = onDisk.shards[0]!.lines.map((l) => JSON.parse(l) as unknown);
    const chat = (id: string, content: string): unknown => ({
      custom_id: id,
      method: 'POST',
      url: ENDPOINT,
      body: {
        model: 'qwen-plus',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content },
        ],
      },
    });
    expect(requests).toEqual([
      chat('q1', 'Hello, world'),
      chat('q2', 'She said "hi"\non two lines'),
      chat('q3', 'plain 中文'),
    ]);
  });

  it('gives the same plan when scan threads check the converted rows', async () => {
    const rows = ['id,question'];
    for (let i = 0; i < 3000; i++) rows.push(`r${i % 2900},"line ${i}, with ""quotes""\nand a newline"`);
    const input = write('threads.csv', rows.join('\n') + '\n');
    const inline = await plan(input, path.join(work, 'inline'), { csv: CSV }, { workers: 0 });
    const threads = await plan(
      input,
      path.join(work, 'threads'),
      { csv: CSV },
      { workers: 2, chunkBytes: 1 << 16 },
    );
    expect(threads).toEqual(inline);
    expect(inline.rejected).toBe(100);
    expect(inline.problems[0]).toMatchObject({
      line: 2 * 2900 + 2,
      code: 'duplicate_custom_id',
      custom_id: 'r0',
    });
    expect(readPlan(path.join(work, 'threads')).shards).toEqual(readPlan(path.join(work, 'inline')).shards);
  });

  it('names the missing column and the header it found', async () => {
    const input = write('cols.csv', 'key,prompt\na,b\n');
    await expect(plan(input, undefined, { csv: CSV })).rejects.toThrow(InputError);
    await expect(plan(input, undefined, { csv: CSV })).rejects.toThrow(/no CSV column "id".*"key", "prompt"/);
  });

  it("reads the providers' own CSV without a header: 1-based positions, every row a request", async () => {
    // custom_id in column 1, the content in column 2, no header row.
    const input = write('bare.csv', 'r1,"Hello, world"\nr2,second\nr3\nr1,again\n');
    const outDir = path.join(work, 'bare');
    const noHeader = { header: false, idColumn: '1', promptColumn: '2', model: 'qwen-plus' };
    const report = await plan(input, outDir, { csv: noHeader });
    expect(report).toMatchObject({ lines: 4, valid: 2, rejected: 2 });
    expect(report.problems.map((p) => [p.line, p.code])).toEqual([
      [3, 'csv_missing_field'],
      [4, 'duplicate_custom_id'],
    ]);
    const onDisk = readPlan(outDir);
    expect(onDisk.shards[0]!.nums).toEqual([1, 2]);
    expect(onDisk.shards[0]!.lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      {
        custom_id: 'r1',
        method: 'POST',
        url: ENDPOINT,
        body: { model: 'qwen-plus', messages: [{ role: 'user', content: 'Hello, world' }] },
      },
      {
        custom_id: 'r2',
        method: 'POST',
        url: ENDPOINT,
        body: { model: 'qwen-plus', messages: [{ role: 'user', content: 'second' }] },
      },
    ]);
    // Positions count from 1 and may pick any column; names still work when there is a header.
    const swapped = await plan(input, undefined, { csv: { ...noHeader, idColumn: '2', promptColumn: '1' } });
    expect(swapped.valid).toBe(3);
    await expect(plan(input, undefined, { csv: { ...noHeader, idColumn: 'id' } })).rejects.toThrow(
      /--id-column "id" must be a column position/,
    );
  });

  it('refuses a .csv input without conversion options', async () => {
    const input = write('plain.csv', 'id,question\na,b\n');
    await expect(plan(input, undefined)).rejects.toThrow(/--model/);
  });

  it('rejects rows with missing fields or bad UTF-8, and keeps the rest', async () => {
    const input = write(
      'rows.csv',
      Buffer.concat([
        Buffer.from('id,question\nr1\nr2,ok\nr3,caf'),
        Buffer.from([0xff]),
        Buffer.from('\nr4,fine\n'),
      ]),
    );
    const report = await plan(input, path.join(work, 'rows'), { csv: CSV });
    expect(report.problems.map((p) => [p.line, p.code])).toEqual([
      [2, 'csv_missing_field'],
      [4, 'invalid_utf8'],
    ]);
    expect(report.valid).toBe(2);
  });

  it('an unclosed quote is an input error naming its line', async () => {
    const input = write('quote.csv', 'id,question\na,"never closed\nb,c\n');
    await expect(plan(input, undefined, { csv: CSV })).rejects.toThrow(/line 2/);
  });

  it('checks duplicates through forced hash collisions by re-reading CSV rows', async () => {
    const rows = ['id,question'];
    for (let i = 0; i < 300; i++) rows.push(`${i % 10 === 9 ? `c${i - 5}` : `c${i}`},"q, ${i}"`);
    const input = write('many.csv', rows.join('\n') + '\n');
    const report = await plan(input, path.join(work, 'many'), { csv: CSV }, { workers: 0, idHashMask: 0x7 });
    expect(report.rejected).toBe(30);
    expect(report.problems.every((p) => p.code === 'duplicate_custom_id')).toBe(true);
    expect(report.problems[0]).toMatchObject({ line: 11, custom_id: 'c4' });
    expect(report.problems[0]!.message).toContain('line 6');
  });
});
