// The echo in chat answers is computed only as far as it is shown; it must equal the whole-message
// definition (docs/emulator.md: collapse whitespace, trim, 80 characters and an ellipsis).
import { describe, expect, it } from 'vitest';
import { collapseSpaces, echoContent } from '../../emulator/answers.ts';

const reference = (text: string) => {
  const t = text.replace(/\s+/g, ' ').trim();
  return `echo: ${t.length > 80 ? `${t.slice(0, 80)}…` : t}`;
};

describe('echoContent', () => {
  it('equals the collapse-and-trim definition for any text', () => {
    const pieces = [
      'a',
      'bc',
      ' ',
      '  ',
      '\t',
      '\n',
      '\r\n',
      '\v\f',
      '\u00a0',
      '\u3000',
      '\u2028',
      '\ufeff',
      '日本',
      '😀',
      'x'.repeat(30),
    ];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const texts = [
      '',
      ' ',
      '   a   ',
      'x'.repeat(80),
      'x'.repeat(81),
      ` ${'y'.repeat(80)} `,
      `${'z'.repeat(79)}  q`,
    ];
    for (let n = 0; n < 2000; n++) {
      let t = '';
      for (let k = next() % 40; k > 0; k--) t += pieces[next() % pieces.length];
      texts.push(t);
    }
    for (const t of texts) {
      const body = {
        messages: [
          { role: 'system', content: 's' },
          { role: 'user', content: t },
        ],
      };
      expect(echoContent(body)).toBe(reference(t));
    }
  });

  it('stops reading the message once it has one character more than it shows', () => {
    expect(collapseSpaces(`${'a '.repeat(100)}`, 10)).toBe('a a a a a a');
  });
});
