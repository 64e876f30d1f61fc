/**
 * Byte-level BPE tokenizers split text into pieces with a regex before merging, and a piece always encodes to
 * the same ids. So prompts are encoded piece by piece through one bounded, process-wide LRU cache of piece → ids
 * (common words and whitespace runs repeat across requests), in the family's own split, which keeps the result
 * identical to encoding the whole text at once.
 */

/**
 * A bounded, approximately least-recently-used map in two generations: entries are added to the young map;
 * when it holds half the capacity it becomes the old one and the previous old one is dropped whole. A hit in
 * the old map moves the entry to the young one, so what keeps being used survives. Unlike a Map reordered on
 * every hit (a delete and a set per lookup), a hit in the young map costs one lookup; at most `capacity`
 * entries are held.
 */
export class LruCache<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();
  private readonly generation: number;
  hits = 0;
  misses = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError('LruCache capacity must be an integer >= 2');
    this.generation = Math.floor(capacity / 2);
  }

  get(key: string): V | undefined {
    let value = this.young.get(key);
    if (value === undefined) {
      value = this.old.get(key);
      if (value === undefined) {
        this.misses += 1;
        return undefined;
      }
      this.old.delete(key);
      this.add(key, value);
    }
    this.hits += 1;
    return value;
  }

  set(key: string, value: V): void {
    if (this.young.has(key)) {
      this.young.set(key, value);
      return;
    }
    this.old.delete(key);
    this.add(key, value);
  }

  private add(key: string, value: V): void {
    if (this.young.size >= this.generation) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }
}

export interface PieceEncoderOptions {
  /** The family's pre-tokenizer split, global and unicode (`gu`). */
  readonly split: RegExp;
  /** Encodes one piece (or several whole pieces) as plain text. */
  readonly encode: (text: string) => number[];
  readonly cache: LruCache<readonly number[]>;
  /** Pieces longer than this are not cached (one-off runs of an unspaced script, or junk). Default 64. */
  readonly maxCachedChars?: number;
  /**
   * Where the family's own merge loop is quadratic in a piece's length, a longer piece is encoded in chunks of
   * this many characters: a bounded cost for a 65,536-character run of CJK text, at most a token or two of
   * difference per chunk boundary, and only in pieces no spaced script produces.
   */
  readonly chunkChars?: number;
  /**
   * The split as a scan, where a family has one (tokenizer-llama3-scan.ts): the end of the piece that starts at
   * `at`, exactly as `split` would match it there, or -1 where the scan leaves that piece to `split`.
   */
  readonly scan?: (text: string, at: number) => number;
}

/** Ids of `text`, piece by piece, through the cache. */
export function encodeByPieces(text: string, o: PieceEncoderOptions): number[] {
  const ids: number[] = [];
  const maxCached = o.maxCachedChars ?? 64;
  const scan = o.scan;
  // Made on first use: with a scan, ASCII text never needs it.
  let split: RegExp | undefined;
  let end = 0;
  let at = 0;
  for (;;) {
    let piece: string;
    const scanned = scan !== undefined && at < text.length ? scan(text, at) : -1;
    if (scanned > at) {
      piece = text.slice(at, scanned);
      end = scanned;
    } else {
      split ??= new RegExp(o.split.source, o.split.flags);
      split.lastIndex = at;
      const match = split.exec(text);
      if (match === null) break;
      piece = match[0];
      if (piece === '') {
        at = split.lastIndex + 1;
        continue;
      }
      // Text the split skipped (it matches everything in these families, but never drop a character).
      if (match.index > end) append(ids, o.encode(text.slice(end, match.index)));
      end = match.index + piece.length;
    }
    at = end;
    if (piece.length <= maxCached) {
      let cached = o.cache.get(piece);
      if (cached === undefined) {
        cached = o.encode(piece);
        o.cache.set(piece, cached);
      }
      append(ids, cached);
    } else if (o.chunkChars !== undefined && piece.length > o.chunkChars) {
      for (const chunk of chunks(piece, o.chunkChars)) append(ids, o.encode(chunk));
    } else {
      append(ids, o.encode(piece));
    }
  }
  if (end < text.length) append(ids, o.encode(text.slice(end)));
  return ids;
}

/** `text` in chunks of at most `size` UTF-16 units, never splitting a surrogate pair. */
function* chunks(text: string, size: number): Generator<string> {
  for (let start = 0; start < text.length;) {
    let stop = Math.min(text.length, start + size);
    const last = text.charCodeAt(stop - 1);
    if (stop < text.length && last >= 0xd800 && last <= 0xdbff) stop -= 1;
    yield text.slice(start, stop);
    start = stop;
  }
}

// A loop, not push(...more): spreading a long document's ids can overflow the call stack.
function append(target: number[], more: readonly number[]): void {
  for (const id of more) target.push(id);
}
