/**
 * Llama 3's split as a scan (lib/adapters/tokenizer-llama3-scan.ts) gives the regular expression's pieces exactly:
 * wherever it decides a piece, the expression matches the same characters there, and where it declines the
 * expression decides. Checked at every position of random strings over an alphabet of the expression's corner
 * cases (contractions in both cases, every ASCII whitespace, digits, symbols, letters, digits and spaces outside
 * ASCII, surrogate pairs) and of this repository's prose and code, and on the token ids of whole documents.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ByteLevelTokenizer } from '../../lib/adapters/tokenizer-byte-level';
import { LLAMA3_SPLIT } from '../../lib/adapters/tokenizer-llama3';
import { llama3PieceEnd } from '../../lib/adapters/tokenizer-llama3-scan';
import { readVocabulary } from '../../lib/adapters/tokenizer-vocabulary';
import { mulberry32 } from '../../lib/core/random';

const ALPHABET = [
  ...'aZsStTrReEvVlLmMdDxq',
  "'",
  ...'0123456789',
  ...' \t\n\r\v\f',
  ...'.,-_/(){}[]"`!?;:#*+=<>|~@$%^&\\',
  '\x00',
  '\x1c',
  '\x7f',
  'é',
  'Ж',
  '中',
  '²',
  '٣',
  '\u00a0',
  '\u2003',
  '\u3000',
  '\u2028',
  '\ufeff',
  '\u0301',
  '😀',
  '—',
];

function randomText(rng: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALPHABET[Math.floor(rng() * ALPHABET.length)]!;
  return s;
}

/** The expression's match at `at` as [start, end), searching from there as the encoder does. */
const re = new RegExp(LLAMA3_SPLIT.source, LLAMA3_SPLIT.flags);
function regexAt(text: string, at: number): [number, number] | null {
  re.lastIndex = at;
  const m = re.exec(text);
  return m ? [m.index, m.index + m[0].length] : null;
}

/** Checks every position; returns how many the scan decided. */
function checkEveryPosition(text: string): { decided: number; positions: number } {
  let decided = 0;
  for (let at = 0; at < text.length; at++) {
    const end = llama3PieceEnd(text, at);
    if (end === -1) continue;
    decided += 1;
    expect(regexAt(text, at), `${JSON.stringify(text.slice(Math.max(0, at - 24), at + 24))} at ${at}`).toEqual([
      at,
      end,
    ]);
  }
  return { decided, positions: text.length };
}

/** The pieces from the start, as the encoder walks them (scan first, the expression where it declines). */
function piecesByScan(text: string): { pieces: string[]; scanned: number } {
  const pieces: string[] = [];
  let scanned = 0;
  for (let at = 0; at < text.length;) {
    let end = llama3PieceEnd(text, at);
    if (end === -1) end = regexAt(text, at)![1];
    else scanned += 1;
    pieces.push(text.slice(at, end));
    at = end;
  }
  return { pieces, scanned };
}

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const code = readFileSync(new URL('../../lib/core/handoff/kv-blob.ts', import.meta.url), 'utf8');

describe("Llama 3's split as a scan", () => {
  it('matches the expression at every position of random corner-case strings', () => {
    const rng = mulberry32(2026);
    let decided = 0;
    for (let trial = 0; trial < 6000; trial++) decided += checkEveryPosition(randomText(rng, 1 + (trial % 24))).decided;
    // The scan really decides most positions: this test checks it, not only its refusals.
    expect(decided).toBeGreaterThan(20_000);
  });

  it('matches the expression at every position of prose and code', () => {
    for (const text of [readme.slice(0, 60_000), code]) {
      const { decided, positions } = checkEveryPosition(text);
      expect(decided / positions).toBeGreaterThan(0.95);
    }
  });

  it('walks to the same pieces as matchAll, the scan deciding nearly all of them in ASCII text', () => {
    for (const text of [readme, code, "it's 'RE' 'Ve' don'T\r\n\r\n  x  \t\n"]) {
      const expected = [...text.matchAll(LLAMA3_SPLIT)].map((m) => m[0]);
      const { pieces, scanned } = piecesByScan(text);
      expect(pieces).toEqual(expected);
      expect(scanned / pieces.length).toBeGreaterThan(0.95);
    }
  });

  it('gives the same token ids as the expression alone, on whole documents', () => {
    const vocabulary = readVocabulary('llama3');
    const plain = new ByteLevelTokenizer('llama3', vocabulary, { split: LLAMA3_SPLIT });
    const scanned = new ByteLevelTokenizer('llama3', vocabulary, { split: LLAMA3_SPLIT, scan: llama3PieceEnd });
    const rng = mulberry32(7);
    for (const text of [readme, code, randomText(rng, 5000), randomText(rng, 5000)]) {
      expect(scanned.encode(text)).toEqual(plain.encode(text));
    }
  }, 60_000);
});
