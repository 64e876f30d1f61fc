/**
 * Work a dead process owned, found and ended. Each server sharing a Redis holds an owner lease there (a key
 * with a short TTL it keeps renewing) and stamps its id on the records it creates. The reconciler, on start and
 * then periodically, scans the records: one not yet terminal whose owner's lease is gone (the process was
 * killed, crashed or lost its host) is ended `failed` with code `owner_lost` and a reason the client can act
 * on, so nobody polls or waits for it until its TTL. Its KV blob, if any, lapses with its own lease.
 *
 * The descriptor of such a request lived in the dead process's memory queue, so there is nothing to resume
 * it from: it is ended, not resumed.
 */
import type { Redis } from 'ioredis';
import { escapeGlob } from '../adapters/kv-redis';
import { isTerminal, type RequestEvent, type RequestRecord } from '../core/engine/record';
import { RequestTracker } from '../core/engine/tracker';
import type { EventBus, ResultStore } from '../core/ports';

/** How long an owner lease lasts unrenewed: how soon a dead server's requests are found (plus one sweep). */
export const OWNER_LEASE_MS = 5000;
/** How often a server renews its lease (three times per lease, so one slow renewal never loses it). */
const RENEW_EVERY_MS = Math.floor(OWNER_LEASE_MS / 3);
/** How often the records are swept for dead owners after the sweep at start. */
export const RECONCILE_EVERY_MS = 5000;

export const OWNER_LOST = 'owner_lost';

export interface ReconcilerOptions {
  readonly redis: Redis;
  /** The pipeline's key prefix (`disagg:` by default): leases at `<prefix>owner:<id>`, records at `<prefix>result:`. */
  readonly prefix: string;
  /** This server's owner id (stamped on the records it creates). */
  readonly ownerId: string;
  readonly results: ResultStore<RequestRecord>;
  readonly events: EventBus<RequestEvent>;
  readonly resultTtlMs: number;
  readonly log: (line: string) => void;
}

/** What one sweep found. */
export interface ReconcileReport {
  readonly scanned: number;
  readonly open: number;
  /** Ended `owner_lost`: their owner's lease was gone. */
  readonly ended: number;
}

export class Reconciler {
  private renewTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<unknown> | null = null;

  constructor(private readonly o: ReconcilerOptions) {}

  private leaseKey(owner: string): string {
    return `${this.o.prefix}owner:${owner}`;
  }

  /** Takes this server's lease, sweeps once, then keeps renewing and sweeping on timers that never hold the process. */
  async start(): Promise<ReconcileReport | null> {
    await this.renew();
    this.renewTimer = setInterval(() => void this.renew(), RENEW_EVERY_MS).unref();
    const first = await this.sweepSafely();
    this.sweepTimer = setInterval(() => void this.sweepSafely(), RECONCILE_EVERY_MS).unref();
    return first;
  }

  /** Stops renewing and sweeping and gives the lease up (this server's records are all ended by now). */
  async stop(): Promise<void> {
    if (this.renewTimer) clearInterval(this.renewTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.sweeping;
    await this.o.redis.del(this.leaseKey(this.o.ownerId)).catch(() => undefined);
  }

  private async renew(): Promise<void> {
    try {
      await this.o.redis.set(this.leaseKey(this.o.ownerId), String(Date.now()), 'PX', OWNER_LEASE_MS);
    } catch {
      // The store is down: its outage is reported on /healthz; the lease is taken again once it is back.
    }
  }

  private async sweepSafely(): Promise<ReconcileReport | null> {
    if (this.sweeping) return null;
    const run = this.sweep().catch((err: unknown) => {
      this.o.log(`error while reconciling records of dead servers: ${(err as Error).message}`);
      return null;
    });
    this.sweeping = run;
    try {
      return await run;
    } finally {
      this.sweeping = null;
    }
  }

  /** One pass over the records: ends every open one whose owner's lease is gone. */
  async sweep(): Promise<ReconcileReport> {
    const { redis, prefix } = this.o;
    const recordPrefix = `${prefix}result:`;
    let cursor = '0';
    let scanned = 0;
    let open = 0;
    let ended = 0;
    const alive = new Map<string, boolean>();
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(recordPrefix)}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length === 0) continue;
      const values = await redis.mget(...keys);
      scanned += keys.length;
      for (const json of values) {
        const record = parseRecord(json);
        if (!record || isTerminal(record.state)) continue;
        open += 1;
        const owner = record.owner;
        // A record from a server without leases (an older version) is left to its TTL.
        if (!owner || owner === this.o.ownerId) continue;
        if (!alive.has(owner)) alive.set(owner, (await redis.exists(this.leaseKey(owner))) === 1);
        if (alive.get(owner)) continue;
        await this.endLost(record);
        ended += 1;
      }
    } while (cursor !== '0');
    if (ended > 0) this.o.log(`reconciled ${ended} request(s) left unfinished by a server that is gone`);
    return { scanned, open, ended };
  }

  private async endLost(record: RequestRecord): Promise<void> {
    const tracker = new RequestTracker(
      record,
      {
        results: this.o.results,
        events: this.o.events,
        wallClockMs: () => performance.timeOrigin + performance.now(),
      },
      this.o.resultTtlMs,
    );
    await tracker.finish('failed', {
      code: OWNER_LOST,
      message: `the server running request ${record.id} stopped before it finished (it was killed or crashed while the request was ${record.state}); nothing more will come of it: send the request again`,
    });
  }
}

function parseRecord(json: string | null): RequestRecord | null {
  if (json === null) return null;
  try {
    const record = JSON.parse(json) as RequestRecord;
    return typeof record.state === 'string' && typeof record.id === 'string' ? record : null;
  } catch {
    return null;
  }
}
