import type { Queue, QueueMessage } from '../core/ports';

export interface MemoryQueueOptions {
  /** How long a received, un-acked message stays hidden before it can be received again. */
  readonly visibilityTimeoutMs: number;
  /** Receives allowed per message; the receive after the last one moves it to the dead-letter list. */
  readonly maxReceives: number;
}

interface StoredMessage {
  readonly id: number;
  readonly body: string;
  /** performance.now() at which it may be received (again). */
  visibleAt: number;
  receiveCount: number;
  /** Receipt of the current delivery; null when waiting or released. */
  receipt: string | null;
}

/**
 * In-process at-least-once queue with SQS semantics: visibility timeout, receive counts, dead-letter
 * list, long polling. Receipts are `id:receiveCount`, so each delivery has its own and a receipt from
 * an earlier delivery can neither ack nor release the current one.
 */
export class MemoryQueue implements Queue {
  readonly visibilityTimeoutMs: number;
  readonly maxReceives: number;
  /** Insertion-ordered, so receives are roughly FIFO. */
  private readonly messages = new Map<number, StoredMessage>();
  private readonly dlq: string[] = [];
  private readonly waiters = new Set<() => void>();
  private nextId = 1;
  private closed = false;

  constructor(options: MemoryQueueOptions) {
    validateQueueOptions(options);
    this.visibilityTimeoutMs = options.visibilityTimeoutMs;
    this.maxReceives = options.maxReceives;
  }

  send(body: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error('MemoryQueue: send on a closed queue'));
    const id = this.nextId++;
    this.messages.set(id, { id, body, visibleAt: performance.now(), receiveCount: 0, receipt: null });
    this.wakeWaiters();
    return Promise.resolve();
  }

  async receive(maxMessages: number, waitMs: number): Promise<QueueMessage[]> {
    validateReceive(maxMessages, waitMs);
    const deadline = performance.now() + waitMs;
    for (;;) {
      if (this.closed) return [];
      const now = performance.now();
      const taken = this.take(maxMessages, now);
      if (taken.length > 0 || now >= deadline) return taken;
      // Sleep until a send/release wakes us, the next hidden message turns visible, or time is up.
      const nextVisible = this.nextVisibleAt(now);
      await this.waitForWake(Math.min(deadline, nextVisible ?? Infinity) - now);
    }
  }

  ack(receipt: string): Promise<void> {
    const message = this.current(receipt);
    if (message) this.messages.delete(message.id);
    return Promise.resolve();
  }

  release(receipt: string, delayMs = 0): Promise<void> {
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      return Promise.reject(new RangeError(`MemoryQueue.release: delayMs must be finite and >= 0, got ${delayMs}`));
    }
    const message = this.current(receipt);
    if (message) {
      message.receipt = null;
      message.visibleAt = performance.now() + delayMs;
      this.wakeWaiters();
    }
    return Promise.resolve();
  }

  depth(): Promise<number> {
    return Promise.resolve(this.messages.size);
  }

  deadLetters(): Promise<string[]> {
    return Promise.resolve([...this.dlq]);
  }

  /** Pending receives resolve with [] and later ones return [] at once; sends reject. */
  close(): Promise<void> {
    this.closed = true;
    this.wakeWaiters();
    return Promise.resolve();
  }

  private take(maxMessages: number, now: number): QueueMessage[] {
    const out: QueueMessage[] = [];
    for (const message of this.messages.values()) {
      if (out.length >= maxMessages) break;
      if (message.visibleAt > now) continue;
      if (message.receiveCount >= this.maxReceives) {
        this.messages.delete(message.id);
        this.dlq.push(message.body);
        continue;
      }
      message.receiveCount += 1;
      message.receipt = `${message.id}:${message.receiveCount}`;
      message.visibleAt = now + this.visibilityTimeoutMs;
      out.push({ body: message.body, receipt: message.receipt, receiveCount: message.receiveCount });
    }
    return out;
  }

  private nextVisibleAt(now: number): number | null {
    let next: number | null = null;
    for (const message of this.messages.values()) {
      if (message.visibleAt > now && (next === null || message.visibleAt < next)) next = message.visibleAt;
    }
    return next;
  }

  private current(receipt: string): StoredMessage | undefined {
    const id = Number(receipt.split(':', 1)[0]);
    const message = this.messages.get(id);
    return message && message.receipt === receipt ? message : undefined;
  }

  private waitForWake(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, ms));
      this.waiters.add(wake);
    });
  }

  /** Wakes every waiter; the ones that find nothing go back to sleep (cheap in one process). */
  private wakeWaiters(): void {
    for (const wake of [...this.waiters]) wake();
  }
}

function validateQueueOptions(options: MemoryQueueOptions): void {
  if (!Number.isFinite(options.visibilityTimeoutMs) || options.visibilityTimeoutMs <= 0) {
    throw new RangeError(`MemoryQueue: visibilityTimeoutMs must be > 0, got ${options.visibilityTimeoutMs}`);
  }
  if (!Number.isInteger(options.maxReceives) || options.maxReceives < 1) {
    throw new RangeError(`MemoryQueue: maxReceives must be an integer >= 1, got ${options.maxReceives}`);
  }
}

function validateReceive(maxMessages: number, waitMs: number): void {
  if (!Number.isInteger(maxMessages) || maxMessages < 1) {
    throw new RangeError(`MemoryQueue.receive: maxMessages must be an integer >= 1, got ${maxMessages}`);
  }
  if (!Number.isFinite(waitMs) || waitMs < 0) {
    throw new RangeError(`MemoryQueue.receive: waitMs must be finite and >= 0, got ${waitMs}`);
  }
}
