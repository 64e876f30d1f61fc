import type { Clock } from '../core/ports';

export interface VirtualClockOptions {
  /** Virtual time at construction, in ms. Default 0. */
  readonly startMs?: number;
}

/** Simulator `Clock`: time only moves when charged or advanced, so runs are instant and deterministic. */
export class VirtualClock implements Clock {
  private now: number;

  constructor(options: VirtualClockOptions = {}) {
    const startMs = options.startMs ?? 0;
    if (!Number.isFinite(startMs)) throw new RangeError(`VirtualClock: startMs must be finite, got ${startMs}`);
    this.now = startMs;
  }

  nowMs(): number {
    return this.now;
  }

  /** Advances virtual time by `emulatedMs` at once; the returned promise is already resolved. */
  charge(emulatedMs: number): Promise<void> {
    if (!Number.isFinite(emulatedMs) || emulatedMs < 0) {
      return Promise.reject(
        new RangeError(`VirtualClock.charge: emulatedMs must be finite and >= 0, got ${emulatedMs}`),
      );
    }
    this.now += emulatedMs;
    return Promise.resolve();
  }

  /** Jumps to absolute virtual time `t`; time never runs backwards. */
  advanceTo(t: number): void {
    if (!Number.isFinite(t)) throw new RangeError(`VirtualClock.advanceTo: t must be finite, got ${t}`);
    if (t < this.now) throw new RangeError(`VirtualClock.advanceTo: cannot go back from ${this.now} to ${t}`);
    this.now = t;
  }
}
