import { describe, expect, it } from 'vitest';
import { ssePiece, ssePieces, type SseMeta } from '../../lib/core/api/sse';

const meta = (over: Partial<SseMeta>): SseMeta => ({
  id: 'chatcmpl-1',
  model: 'llama-3.3-70b',
  createdS: 1_700_000_000,
  endpoint: 'chat',
  systemFingerprint: 'fp_disagg',
  promptTokens: 12,
  includeUsage: false,
  ...over,
});

const TEXTS = [
  '',
  ' hello',
  'a "quoted" \\ word',
  'line\nbreak\r\n\ttab',
  '\u0000nul',
  'é日本🙂',
  '\ud800 lone',
  '</script>',
];

describe('ssePieces', () => {
  for (const endpoint of ['chat', 'completion'] as const) {
    for (const includeUsage of [false, true]) {
      it(`writes every piece byte for byte as ssePiece does (${endpoint}, usage ${includeUsage})`, () => {
        const m = meta({ endpoint, includeUsage });
        const piece = ssePieces(m);
        for (const text of TEXTS) expect(piece(text)).toBe(ssePiece(m, text));
        const frame = piece('x');
        expect(frame.startsWith('data: ')).toBe(true);
        expect(frame.endsWith('\n\n')).toBe(true);
        const parsed = JSON.parse(frame.slice(6)) as { choices: { delta?: { content: string }; text?: string }[] };
        const choice = parsed.choices[0]!;
        expect(endpoint === 'chat' ? choice.delta?.content : choice.text).toBe('x');
      });
    }
  }

  it('falls back to whole serialization when a stream field holds the marker text', () => {
    const m = meta({ model: 'odd\u0000disagg piece\u0000model' });
    const piece = ssePieces(m);
    for (const text of TEXTS) expect(piece(text)).toBe(ssePiece(m, text));
  });
});
