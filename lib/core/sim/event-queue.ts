/**
 * The simulator's event queue: a binary min-heap of (time, sequence) over parallel typed arrays,
 * so pushing and popping allocate nothing once grown. Equal times pop in push order (deterministic).
 * Comparisons read both keys and combine them without short-circuiting, so the rare tie branch never
 * lacks the type feedback the optimizing compiler needs (a tie first seen in optimized code would
 * otherwise send the heap back to the interpreter).
 */
export class EventQueue {
  private times = new Float64Array(64);
  private seqs = new Float64Array(64);
  private kinds = new Uint8Array(64);
  private targets = new Int32Array(64);
  private count = 0;
  private nextSeq = 0;
  /** The popped event's kind and target, valid until the next pop. */
  kind = 0;
  target = 0;
  time = 0;

  get size(): number {
    return this.count;
  }

  peekTime(): number {
    return this.count > 0 ? (this.times[0] as number) : Infinity;
  }

  push(time: number, kind: number, target: number): void {
    if (this.count === this.times.length) this.grow();
    let i = this.count++;
    const seq = this.nextSeq++;
    // Sift up.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (precedes(this.times[parent] as number, this.seqs[parent] as number, time, seq)) break;
      this.move(parent, i);
      i = parent;
    }
    this.set(i, time, seq, kind, target);
  }

  /** Removes the earliest event into `time`, `kind` and `target`; false when empty. */
  pop(): boolean {
    if (this.count === 0) return false;
    this.time = this.times[0] as number;
    this.kind = this.kinds[0] as number;
    this.target = this.targets[0] as number;
    const last = --this.count;
    if (last > 0) {
      const time = this.times[last] as number;
      const seq = this.seqs[last] as number;
      const kind = this.kinds[last] as number;
      const target = this.targets[last] as number;
      let i = 0;
      // Sift down.
      for (;;) {
        const left = 2 * i + 1;
        if (left >= last) break;
        const right = left + 1;
        let child = left;
        if (right < last && this.before(right, left)) child = right;
        if (precedes(time, seq, this.times[child] as number, this.seqs[child] as number)) break;
        this.move(child, i);
        i = child;
      }
      this.set(i, time, seq, kind, target);
    }
    return true;
  }

  private before(a: number, b: number): boolean {
    return precedes(this.times[a] as number, this.seqs[a] as number, this.times[b] as number, this.seqs[b] as number);
  }

  private move(from: number, to: number): void {
    this.times[to] = this.times[from] as number;
    this.seqs[to] = this.seqs[from] as number;
    this.kinds[to] = this.kinds[from] as number;
    this.targets[to] = this.targets[from] as number;
  }

  private set(i: number, time: number, seq: number, kind: number, target: number): void {
    this.times[i] = time;
    this.seqs[i] = seq;
    this.kinds[i] = kind;
    this.targets[i] = target;
  }

  private grow(): void {
    const n = this.times.length * 2;
    const times = new Float64Array(n);
    const seqs = new Float64Array(n);
    const kinds = new Uint8Array(n);
    const targets = new Int32Array(n);
    times.set(this.times);
    seqs.set(this.seqs);
    kinds.set(this.kinds);
    targets.set(this.targets);
    this.times = times;
    this.seqs = seqs;
    this.kinds = kinds;
    this.targets = targets;
  }
}

/** Whether (time a, sequence a) comes before (time b, sequence b): every comparison made, none skipped. */
function precedes(ta: number, sa: number, tb: number, sb: number): boolean {
  return Number(ta < tb) + Number(ta === tb) * Number(sa < sb) > 0;
}
