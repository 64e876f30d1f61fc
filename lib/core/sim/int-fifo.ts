/** A first-in first-out queue of request indices; amortised O(1), no allocation per operation once grown. */
export class IntFifo {
  private items = new Int32Array(16);
  private head = 0;
  private tail = 0;

  get length(): number {
    return this.tail - this.head;
  }

  push(value: number): void {
    if (this.tail === this.items.length) {
      const live = this.tail - this.head;
      // Compact in place when at least half is consumed, else grow.
      const next = live * 2 <= this.items.length ? this.items : new Int32Array(this.items.length * 2);
      next.set(this.items.subarray(this.head, this.tail), 0);
      this.items = next;
      this.head = 0;
      this.tail = live;
    }
    this.items[this.tail++] = value;
  }

  /** Removes and returns the oldest value; the caller checks length first. */
  shift(): number {
    return this.items[this.head++] as number;
  }

  peek(): number {
    return this.items[this.head] as number;
  }

  /** The k-th oldest value (0 = the next shift); the caller checks k < length. */
  at(k: number): number {
    return this.items[this.head + k] as number;
  }
}
