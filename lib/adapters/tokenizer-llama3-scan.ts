/**
 * Llama 3's pre-tokenizer split (LLAMA3_SPLIT) as a character scan over ASCII text, for the piece encoder
 * (tokenizer-pieces.ts, PieceEncoderOptions.scan): the regular expression, with its Unicode property classes,
 * was about two thirds of the time of encoding an English prompt. The scan decides a piece only from ASCII
 * characters; wherever the piece would depend on any other character (a letter, digit or space outside ASCII
 * could extend it), it answers -1 and the regular expression splits that piece, so the pieces are the
 * expression's exactly (test/unit/tokenizer-scan.test.ts compares the two on random and real text).
 *
 * The expression's alternatives, tried in order at each position:
 *   1 '(s|t|re|ve|m|ll|d), each letter in either case
 *   2 one character that is not \r, \n, a letter or a digit, optionally, then letters
 *   3 one to three digits
 *   4 an optional space, then characters that are not whitespace, letters or digits, then any \r and \n
 *   5 whitespace up to and including its last \r or \n
 *   6 whitespace not followed by a non-space (a run less its last character, or a run that ends the text)
 *   7 whitespace
 */

const LETTER = 1;
const DIGIT = 2;
/** Whitespace other than \r and \n. */
const SPACE = 3;
const NEWLINE = 4;
const OTHER = 5;
/** Not ASCII, or past the end (-1 from `code`): the scan does not decide on it. */
const UNKNOWN = 0;
const END = 6;

/** Class of each ASCII code unit. */
const CLASS: Uint8Array = (() => {
  const c = new Uint8Array(128).fill(OTHER);
  for (let x = 0x41; x <= 0x5a; x++) c[x] = LETTER;
  for (let x = 0x61; x <= 0x7a; x++) c[x] = LETTER;
  for (let x = 0x30; x <= 0x39; x++) c[x] = DIGIT;
  // JavaScript's \s in ASCII: tab, line feed, vertical tab, form feed, carriage return, space.
  for (const x of [0x09, 0x0b, 0x0c, 0x20]) c[x] = SPACE;
  c[0x0a] = NEWLINE;
  c[0x0d] = NEWLINE;
  return c;
})();

function classAt(text: string, i: number): number {
  if (i >= text.length) return END;
  const x = text.charCodeAt(i);
  return x < 128 ? CLASS[x]! : UNKNOWN;
}

/** The end of Llama 3's piece that starts at `at` (the regular expression's match there), or -1 to let it decide. */
export function llama3PieceEnd(text: string, at: number): number {
  const c = classAt(text, at);
  if (c === UNKNOWN || c === END) return -1;
  // 1: contractions.
  if (text.charCodeAt(at) === 0x27) {
    const a = text.charCodeAt(at + 1) | 0x20;
    const b = text.charCodeAt(at + 2) | 0x20;
    if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return at + 2; // s t m d
    if ((a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c)) return at + 3; // re ve ll
  }
  // 2: letters, after at most one character that is not \r, \n or a digit.
  if (c === LETTER) return letters(text, at + 1);
  const next = classAt(text, at + 1);
  if (c === SPACE || c === OTHER) {
    if (next === UNKNOWN) return -1;
    if (next === LETTER) return letters(text, at + 2);
  }
  // 3: up to three digits.
  if (c === DIGIT) {
    let j = at + 1;
    for (; j < at + 3; j++) {
      const d = classAt(text, j);
      if (d === UNKNOWN) return -1;
      if (d !== DIGIT) break;
    }
    return j;
  }
  // 4: punctuation and symbols, after an optional space, then newlines.
  if (c === OTHER) return others(text, at + 1);
  if (text.charCodeAt(at) === 0x20 && next === OTHER) return others(text, at + 2);
  // 5, 6, 7: a whitespace run.
  let j = at + 1;
  let lastNewline = c === NEWLINE ? at : -1;
  for (; ; j++) {
    const d = classAt(text, j);
    if (d === UNKNOWN) return -1;
    if (d === NEWLINE) lastNewline = j;
    else if (d !== SPACE) break;
  }
  if (lastNewline !== -1) return lastNewline + 1;
  if (j === text.length) return j;
  return j - at >= 2 ? j - 1 : j;
}

function letters(text: string, from: number): number {
  let j = from;
  for (; ; j++) {
    const d = classAt(text, j);
    if (d === UNKNOWN) return -1;
    if (d !== LETTER) return j;
  }
}

function others(text: string, from: number): number {
  let j = from;
  for (; ; j++) {
    const d = classAt(text, j);
    if (d === UNKNOWN) return -1;
    if (d !== OTHER) break;
  }
  while (classAt(text, j) === NEWLINE) j++;
  return j;
}
