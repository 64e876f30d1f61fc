/**
 * A replica's prefix cache: which 512-token prompt blocks have KV resident, least recently used
 * evicted first (as vLLM's automatic prefix caching and Mooncake's KV cache do). A doubly linked
 * list over typed arrays keeps touches O(1) without churning the hash map.
 */
import { BLOCK_TOKENS } from './workload';

const NONE = -1;

export class PrefixCache {
  private readonly slotOf = new Map<number, number>();
  private hashOf = new Float64Array(0);
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private used = 0;
  /** Least recently used, and most recently used. */
  private head = NONE;
  private tail = NONE;

  constructor(readonly capacityBlocks: number) {}

  get size(): number {
    return this.slotOf.size;
  }

  /**
   * Prompt tokens whose KV is cached: 512 x the longest run of leading blocks present, at most
   * promptTokens - 1 (the last prompt token is always computed: it yields the first output token).
   * Touches the matched blocks, so a prompt about to use them keeps them.
   */
  lookup(hashes: readonly number[], promptTokens: number): number {
    let run = 0;
    while (run < hashes.length) {
      const slot = this.slotOf.get(hashes[run] as number);
      if (slot === undefined) break;
      this.touch(slot);
      run += 1;
    }
    return Math.min(run * BLOCK_TOKENS, promptTokens - 1);
  }

  /** The prompt's KV now exists on the replica: its blocks become most recently used. */
  insert(hashes: readonly number[]): void {
    if (this.capacityBlocks <= 0) return;
    for (const hash of hashes) {
      const slot = this.slotOf.get(hash);
      if (slot !== undefined) {
        this.touch(slot);
        continue;
      }
      let fresh: number;
      if (this.used < this.capacityBlocks) {
        if (this.used === this.hashOf.length) this.grow();
        fresh = this.used++;
      } else {
        fresh = this.head;
        this.slotOf.delete(this.hashOf[fresh] as number);
        this.unlink(fresh);
      }
      this.hashOf[fresh] = hash;
      this.slotOf.set(hash, fresh);
      this.append(fresh);
    }
  }

  private touch(slot: number): void {
    if (slot === this.tail) return;
    this.unlink(slot);
    this.append(slot);
  }

  private unlink(slot: number): void {
    const p = this.prev[slot] as number;
    const n = this.next[slot] as number;
    if (p === NONE) this.head = n;
    else this.next[p] = n;
    if (n === NONE) this.tail = p;
    else this.prev[n] = p;
  }

  private append(slot: number): void {
    this.prev[slot] = this.tail;
    this.next[slot] = NONE;
    if (this.tail === NONE) this.head = slot;
    else this.next[this.tail] = slot;
    this.tail = slot;
  }

  private grow(): void {
    const size = Math.min(this.capacityBlocks, Math.max(1024, this.hashOf.length * 2));
    const hashOf = new Float64Array(size);
    const prev = new Int32Array(size);
    const next = new Int32Array(size);
    hashOf.set(this.hashOf);
    prev.set(this.prev);
    next.set(this.next);
    this.hashOf = hashOf;
    this.prev = prev;
    this.next = next;
  }
}
