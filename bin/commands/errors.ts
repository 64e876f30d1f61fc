import { ProfileError } from '../../lib/core/emulator';

export { EXIT_USAGE } from './constants';

export class UsageError extends ProfileError {}

/** Parses a whole number flag, naming the flag and the allowed range when it is not one. */
export function parseCount(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}
