/**
 * A replica's prefix cache: which 512-token prompt blocks have KV resident, least recently used
 * evicted first (as vLLM's automatic prefix caching and Mooncake's KV cache do). A doubly linked
 * list over typed arrays keeps touches O(1), and an open-addressing table over typed arrays (linear
 * probing, deletion by backward shift) finds a hash's slot: block hashes are whole numbers up to 2^53,
 * which a Map would box and hash on every lookup.
 *
 * The list is circular through a sentinel (slot 0), so linking and unlinking take no branch; blocks
 * live in slots 1..used. Rare paths take few branches of their own: a path first taken after the code
 * was optimized lacks type feedback and sends it back to the interpreter. What one probe or one link
 * reads lies side by side (a table entry's hash and slot, a slot's prev and next): the tables outgrow
 * the processor's caches, and each separate array read would be a miss of its own.
 */
import { BLOCK_TOKENS } from './workload';

/** An empty table entry; also "not found". */
const NONE = 0;
const SENTINEL = 0;
const TWO_32 = 4_294_967_296;
/** Capacity the first table and arrays are sized for; a larger cache grows them as it fills. */
const PRESIZE_BLOCKS = 32_768;

export class PrefixCache {
  /**
   * Open addressing, at most a quarter full (short probe runs): entry e is (hash, slot) at 2e and 2e + 1,
   * found by its hash (slot NONE: empty).
   */
  private table = new Float64Array(0);
  private tableMask = -1;
  private tableShift = 32;
  private hashOf = new Float64Array(1);
  /**
   * The list: slot s's prev at 2s and next at 2s + 1; the sentinel's next is the least recently used block,
   * its prev the most recently used.
   */
  private links = new Int32Array(2);
  private used = 0;

  constructor(readonly capacityBlocks: number) {}

  get size(): number {
    // A slot, once used, always holds a block: eviction refills it at once.
    return this.used;
  }

  /**
   * Prompt tokens whose KV is cached: 512 x the longest run of leading blocks present, at most
   * promptTokens - 1 (the last prompt token is always computed: it yields the first output token).
   * Touches the matched blocks, so a prompt about to use them keeps them.
   */
  lookup(hashes: readonly number[], promptTokens: number): number {
    let run = 0;
    while (run < hashes.length) {
      const slot = this.find(hashes[run] as number);
      if (slot === NONE) break;
      this.touch(slot);
      run += 1;
    }
    return Math.min(run * BLOCK_TOKENS, promptTokens - 1);
  }

  /** The prompt's KV now exists on the replica: its blocks become most recently used. */
  insert(hashes: readonly number[]): void {
    if (this.capacityBlocks <= 0) return;
    for (const hash of hashes) {
      const slot = this.find(hash);
      if (slot !== NONE) {
        this.touch(slot);
        continue;
      }
      const fresh = this.used < this.capacityBlocks ? this.newSlot() : this.evict();
      this.hashOf[fresh] = hash;
      this.place(fresh);
      this.link(fresh);
    }
  }

  /** A slot not used yet (the arrays and the table grown as needed). */
  private newSlot(): number {
    const slot = ++this.used;
    if (slot === this.hashOf.length) this.grow();
    if (8 * this.used > this.table.length) this.growTable();
    return slot;
  }

  /** The least recently used block's slot, emptied. */
  private evict(): number {
    const slot = this.links[2 * SENTINEL + 1] as number;
    this.remove(slot);
    this.unlink(slot);
    return slot;
  }

  /** Where a hash's probe starts: a multiplicative hash of its two 32-bit halves, top bits. */
  private home(hash: number): number {
    const lo = hash >>> 0;
    const hi = Math.floor(hash / TWO_32) | 0;
    return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> this.tableShift;
  }

  /** The slot holding `hash`, or NONE. */
  private find(hash: number): number {
    const table = this.table;
    const mask = this.tableMask;
    if (mask < 0) return NONE;
    // From its home on, the step taken before each probe, so it has type feedback from the first lookup (a
    // collision first met in optimized code would send it back to the interpreter).
    for (let at = (this.home(hash) - 1) & mask; ;) {
      at = (at + 1) & mask;
      const slot = table[2 * at + 1] as number;
      if (slot === NONE || table[2 * at] === hash) return slot;
    }
  }

  /** Enters slot `slot` (its hash in hashOf, not in the table) into the table. */
  private place(slot: number): void {
    const table = this.table;
    const mask = this.tableMask;
    const hash = this.hashOf[slot] as number;
    // From its home on, stepping first (find's loop).
    let at = (this.home(hash) - 1) & mask;
    do at = (at + 1) & mask;
    while (table[2 * at + 1] !== NONE);
    table[2 * at] = hash;
    table[2 * at + 1] = slot;
  }

  /** Takes slot `slot`'s entry out of the table, shifting back the entries its probe run would lose. */
  private remove(slot: number): void {
    const table = this.table;
    const mask = this.tableMask;
    // From its home on (a do-while, so the step has type feedback from the first removal).
    let hole = (this.home(this.hashOf[slot] as number) - 1) & mask;
    do hole = (hole + 1) & mask;
    while (table[2 * hole + 1] !== slot);
    for (let at = (hole + 1) & mask; ; at = (at + 1) & mask) {
      const next = table[2 * at + 1] as number;
      if (next === NONE) break;
      // The entry fills the hole when the hole lies on its probe path: no nearer its position than its home.
      const hash = table[2 * at] as number;
      const home = this.home(hash);
      if (((at - home) & mask) >= ((at - hole) & mask)) {
        table[2 * hole] = hash;
        table[2 * hole + 1] = next;
        hole = at;
      }
    }
    table[2 * hole + 1] = NONE;
  }

  private growTable(): void {
    // The first table holds the whole capacity (up to PRESIZE_BLOCKS) at once: no rehash as it fills.
    const entries = Math.max(
      this.table.length,
      4 * 2 ** Math.ceil(Math.log2(Math.min(this.capacityBlocks, PRESIZE_BLOCKS))),
    );
    this.table = new Float64Array(2 * entries);
    this.tableMask = entries - 1;
    this.tableShift = 32 - Math.log2(entries);
    // Every slot up to `used` but the one being filled holds a block.
    for (let slot = 1; slot < this.used; slot++) this.place(slot);
  }

  private touch(slot: number): void {
    this.unlink(slot);
    this.link(slot);
  }

  private unlink(slot: number): void {
    const links = this.links;
    const p = links[2 * slot] as number;
    const n = links[2 * slot + 1] as number;
    links[2 * p + 1] = n;
    links[2 * n] = p;
  }

  /** Makes `slot` the most recently used (just before the sentinel). */
  private link(slot: number): void {
    const links = this.links;
    const last = links[2 * SENTINEL] as number;
    links[2 * slot] = last;
    links[2 * slot + 1] = SENTINEL;
    links[2 * last + 1] = slot;
    links[2 * SENTINEL] = slot;
  }

  private grow(): void {
    // Slots 1..capacity and the sentinel.
    const size = Math.min(this.capacityBlocks + 1, Math.max(PRESIZE_BLOCKS + 1, this.hashOf.length * 2));
    const hashOf = new Float64Array(size);
    const links = new Int32Array(2 * size);
    hashOf.set(this.hashOf);
    links.set(this.links);
    this.hashOf = hashOf;
    this.links = links;
  }
}
