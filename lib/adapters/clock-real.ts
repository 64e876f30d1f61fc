import type { Clock } from '../core/ports';

export interface RealClockOptions {
  /** Real ms slept per emulated ms: 1 paces in real time, 0 never sleeps, 0.1 sleeps a tenth. Default 1. */
  readonly timeScale?: number;
}

/**
 * Wall-clock `Clock`. `nowMs()` is `performance.now()`: ms since this process started, monotonic,
 * with no epoch offset (use it for durations, never as a calendar timestamp).
 */
export class RealClock implements Clock {
  readonly timeScale: number;

  constructor(options: RealClockOptions = {}) {
    const timeScale = options.timeScale ?? 1;
    if (!Number.isFinite(timeScale) || timeScale < 0) {
      throw new RangeError(`RealClock: timeScale must be a finite number >= 0, got ${String(timeScale)}`);
    }
    this.timeScale = timeScale;
  }

  nowMs(): number {
    return performance.now();
  }

  charge(emulatedMs: number): Promise<void> {
    if (!Number.isFinite(emulatedMs) || emulatedMs < 0) {
      return Promise.reject(new RangeError(`RealClock.charge: emulatedMs must be finite and >= 0, got ${emulatedMs}`));
    }
    const sleepMs = emulatedMs * this.timeScale;
    if (sleepMs <= 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, sleepMs));
  }
}
