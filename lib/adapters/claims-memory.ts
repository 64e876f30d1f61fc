import type { ClaimStore } from '../core/ports';

/** Claims in one process's memory: for the embedded runtime and tests of several workers in one process. */
export class MemoryClaimStore implements ClaimStore {
  private readonly claims = new Map<string, { owner: string; expiresAt: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  async claim(key: string, owner: string, leaseMs: number): Promise<boolean> {
    const current = this.claims.get(key);
    if (current && current.owner !== owner && current.expiresAt > this.now()) return false;
    this.claims.set(key, { owner, expiresAt: this.now() + leaseMs });
    return true;
  }

  async release(key: string, owner: string): Promise<void> {
    if (this.claims.get(key)?.owner === owner) this.claims.delete(key);
  }
}
