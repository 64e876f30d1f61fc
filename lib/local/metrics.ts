/**
 * The embedded server's Prometheus metrics (`GET /metrics`), with prom-client. Everything is read in this
 * thread from the pipeline's event bus, where the stages publish timeline stamps and terminal records (from
 * worker threads too, under `serve --workers`, which relay their events here), and from the runtime's
 * occupancy at scrape time: one endpoint however many threads run the stages. Names: metric-catalogue.ts.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CompletionSeen } from '../core/api/app';
import {
  CLOCK_LABEL,
  LATENCY_METRICS,
  METRIC,
  type LatencyKey,
  type MetricClock,
  type RequestOutcome,
} from '../core/engine/metric-catalogue';
import { isTerminal, type RequestEvent, type RequestRecord, type TimelineEvent } from '../core/engine/record';
import { requestFigures } from '../core/engine/request-figures';
import type { RoutingMode } from '../core/engine/routing';
import type { Occupancy } from './runtime';

/**
 * Histogram buckets, seconds: vLLM's for TTFT and end-to-end latency, extended below 1 ms because the emulated
 * CS-3 decodes a token in about half a millisecond and timeScale 0 runs requests in milliseconds.
 */
const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
  20, 40, 80, 160, 640,
];
const TPOT_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
  0.5, 0.75, 1, 2.5,
];

/** Busy fractions are over this much recent time. */
const BUSY_WINDOW_MS = 60_000;
/** Requests remembered between their admission and their end; beyond this the oldest are forgotten. */
const MAX_TRACKED = 20_000;

export type PoolName = 'prefill' | 'decode' | 'colocated';

export interface ServeMetricsOptions {
  readonly model: string;
  /** Prefill replicas working at once: the prefill pool's capacity for its busy fraction. */
  readonly prefillReplicas: number;
  readonly occupancy: () => Occupancy;
  /** Epoch ms (tests pass their own). */
  readonly nowMs?: () => number;
}

/**
 * Time a pool spends working: `active` requests on `capacity` replicas, integrated over time. A decode pool
 * steps one batch for all its requests, so its capacity is 1: busy whenever its batch is not empty.
 */
class BusyMeter {
  private active = 0;
  private busyMs = 0;
  private since: number;
  /** (time, cumulative busy ms) at past reads, oldest first, for the windowed fraction. */
  private readonly history: [number, number][] = [];

  constructor(
    private readonly capacity: number,
    private readonly startedMs: number,
  ) {
    this.since = startedMs;
    this.history.push([startedMs, 0]);
  }

  change(atMs: number, delta: number): void {
    this.advance(atMs);
    this.active = Math.max(0, this.active + delta);
  }

  totalBusyMs(nowMs: number): number {
    this.advance(nowMs);
    return this.busyMs;
  }

  /** The busy fraction over the last BUSY_WINDOW_MS or a little more (since the start, if shorter). */
  ratio(nowMs: number): number {
    const total = this.totalBusyMs(nowMs);
    this.history.push([nowMs, total]);
    // Keep the newest read at or before the window's start, and every read after it.
    while (this.history.length > 1 && this.history[1]![0] <= nowMs - BUSY_WINDOW_MS) this.history.shift();
    const [fromMs, fromBusyMs] = this.history[0]!;
    const span = nowMs - fromMs;
    return span > 0 ? Math.min(1, Math.max(0, (total - fromBusyMs) / span)) : 0;
  }

  private advance(atMs: number): void {
    const at = Math.max(atMs, this.since);
    this.busyMs += ((at - this.since) * Math.min(this.active, this.capacity)) / this.capacity;
    this.since = at;
  }
}

/** What the metrics remember of one request between its stamps. */
interface Watched {
  mode: RoutingMode;
  route: string;
  /** The pool it occupies now, if any. */
  busyOn: PoolName | null;
  /** Emulated work its prefill pool had finished when it was queued (for its emulated queue time). */
  queuedAtEmulatedMs: number | null;
  emulatedQueueMs: number | null;
  kvHeldBytes: number;
}

export class ServeMetrics {
  readonly registry = new Registry();
  private readonly now: () => number;
  private readonly latency: Record<LatencyKey, Histogram<'model_name' | typeof CLOCK_LABEL>>;
  private readonly requests: Counter<'model_name' | 'route' | 'mode' | 'outcome' | 'reason'>;
  private readonly success: Counter<'model_name' | 'finished_reason'>;
  private readonly promptTokens: Counter<'model_name'>;
  private readonly generationTokens: Counter<'model_name'>;
  private readonly http: Counter<'route' | 'method' | 'status'>;
  private readonly kvBytes: Counter<'path'>;
  private readonly kvBlobs: Counter<'path'>;
  private readonly meters: Record<PoolName, BusyMeter>;
  /** Emulated prefill ms each pool finished, per replica: the clock emulated queue time is read on. */
  private readonly emulatedWorkMs: Record<PoolName, number> = { prefill: 0, decode: 0, colocated: 0 };
  private readonly watched = new Map<string, Watched>();
  private kvHeld = { blobs: 0, bytes: 0 };

  constructor(private readonly options: ServeMetricsOptions) {
    this.now = options.nowMs ?? Date.now;
    const registers = [this.registry];
    const model = options.model;
    this.latency = Object.fromEntries(
      (Object.keys(LATENCY_METRICS) as LatencyKey[]).map((key) => [
        key,
        new Histogram({
          name: LATENCY_METRICS[key].name,
          help: `${LATENCY_METRICS[key].help} Label clock: emulated or measured.`,
          labelNames: ['model_name', CLOCK_LABEL],
          buckets: key === 'tpot' ? TPOT_BUCKETS : LATENCY_BUCKETS,
          registers,
        }),
      ]),
    ) as ServeMetrics['latency'];
    this.requests = new Counter({
      name: METRIC.requests,
      help: 'Requests by route, mode and outcome; reason is the finish reason, error code or full queue.',
      labelNames: ['model_name', 'route', 'mode', 'outcome', 'reason'],
      registers,
    });
    this.success = new Counter({
      name: METRIC.requestSuccess,
      help: 'Requests completed, by finish reason.',
      labelNames: ['model_name', 'finished_reason'],
      registers,
    });
    this.promptTokens = new Counter({
      name: METRIC.promptTokens,
      help: 'Prompt tokens of requests that ended (rejected ones excluded).',
      labelNames: ['model_name'],
      registers,
    });
    this.generationTokens = new Counter({
      name: METRIC.generationTokens,
      help: 'Output tokens generated.',
      labelNames: ['model_name'],
      registers,
    });
    this.http = new Counter({
      name: METRIC.httpResponses,
      help: 'HTTP responses by route pattern, method and status.',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.kvBytes = new Counter({
      name: METRIC.kvHandoffBytes,
      help: 'KV cache bytes handed from prefill to decode; path inline (in the descriptor) or stored (KV store).',
      labelNames: ['path'],
      registers,
    });
    this.kvBlobs = new Counter({
      name: METRIC.kvHandoffBlobs,
      help: 'KV blobs handed from prefill to decode, by path.',
      labelNames: ['path'],
      registers,
    });
    const started = this.now();
    this.meters = {
      prefill: new BusyMeter(Math.max(1, options.prefillReplicas), started),
      decode: new BusyMeter(1, started),
      colocated: new BusyMeter(1, started),
    };
    this.registerGauges(model, registers);
    // Every series a dashboard plots exists from the start, at zero.
    for (const clock of ['emulated', 'measured'] as const) {
      for (const key of Object.keys(this.latency) as LatencyKey[]) this.latency[key].zero({ model_name: model, clock });
    }
    this.promptTokens.inc({ model_name: model }, 0);
    this.generationTokens.inc({ model_name: model }, 0);
  }

  /** Stored KV blobs put by prefill and not yet taken by decode. */
  get kvBlobsHeld(): number {
    return this.kvHeld.blobs;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for one scrape. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** A request the API admitted: remembered until it ends, for its route label. */
  accepted(seen: CompletionSeen): void {
    const w = this.watch(seen.id, seen.mode);
    w.route = seen.route;
  }

  /** A request refused at admission: counted here, not from the pipeline (which need not record it). */
  rejected(seen: CompletionSeen & { readonly queue: 'prefill' | 'decode' }): void {
    this.watched.delete(seen.id);
    this.countRequest(seen.route, seen.mode, 'rejected', `${seen.queue}_queue_full`);
  }

  responded(response: { route: string; method: string; status: number }): void {
    this.http.inc({ route: response.route, method: response.method, status: String(response.status) });
  }

  /** Every event the pipeline publishes (MemoryEventBus.watchAll). */
  observe(requestId: string, event: RequestEvent): void {
    if (event.type === 'timeline') this.stamp(requestId, event.stamp, event.createdAtMs, event.mode);
    else if (event.type === 'done') this.done(requestId, event.record);
  }

  private stamp(id: string, stamp: TimelineEvent, createdAtMs: number, mode: RoutingMode): void {
    if (isTerminal(stamp.event as RequestRecord['state'])) return;
    const at = createdAtMs + stamp.measuredMs;
    const w = this.watch(id, mode);
    const prefillPool: PoolName = mode === 'colocated' ? 'colocated' : 'prefill';
    switch (stamp.event) {
      case 'prefill_queued':
        w.queuedAtEmulatedMs = this.emulatedWorkMs[prefillPool];
        break;
      case 'prefill_start': {
        const recompute = stamp.detail?.recompute === true;
        if (!recompute && w.emulatedQueueMs === null && w.queuedAtEmulatedMs !== null) {
          w.emulatedQueueMs = this.emulatedWorkMs[prefillPool] - w.queuedAtEmulatedMs;
        }
        this.occupy(w, recompute ? 'decode' : prefillPool, at);
        break;
      }
      case 'prefill_end': {
        const emulated = stamp.detail?.emulatedPrefillMs;
        if (typeof emulated === 'number' && w.busyOn !== null) {
          this.emulatedWorkMs[w.busyOn] += emulated / (w.busyOn === 'prefill' ? this.options.prefillReplicas : 1);
        }
        this.occupy(w, null, at);
        break;
      }
      case 'kv_put': {
        const bytes = Number(stamp.detail?.bytes ?? 0);
        const path = stamp.detail?.inline === true ? 'inline' : 'stored';
        this.kvBytes.inc({ path }, bytes);
        this.kvBlobs.inc({ path });
        if (path === 'stored') this.holdKv(w, bytes);
        break;
      }
      case 'kv_get':
        this.holdKv(w, 0);
        break;
      case 'decode_start':
        this.occupy(w, mode === 'colocated' ? 'colocated' : 'decode', at);
        break;
      default:
        break;
    }
  }

  private done(id: string, record: RequestRecord): void {
    const w = this.watched.get(id);
    if (w) {
      this.occupy(w, null, record.createdAtMs + record.measured.totalMs);
      this.holdKv(w, 0);
      this.watched.delete(id);
    }
    // Rejections are counted at admission (rejected()), whether or not a record is written for them.
    if (record.state === 'rejected') return;
    const model = this.options.model;
    const outcome = record.state as RequestOutcome;
    const reason =
      record.state === 'completed'
        ? (record.finishReason ?? 'stop')
        : record.state === 'failed'
          ? (record.error?.code ?? 'unknown')
          : '';
    this.countRequest(w?.route ?? 'unknown', record.mode, outcome, reason);
    this.promptTokens.inc({ model_name: model }, record.promptTokens);
    this.generationTokens.inc({ model_name: model }, record.completionTokens);
    if (record.state !== 'completed') return;
    this.success.inc({ model_name: model, finished_reason: reason });
    const figures = requestFigures(record);
    const emulated = { ...figures.emulated, ...(w?.emulatedQueueMs != null ? { queueMs: w.emulatedQueueMs } : {}) };
    this.observeLatencies('emulated', emulated);
    this.observeLatencies('measured', figures.measured);
  }

  private observeLatencies(clock: MetricClock, f: Partial<Record<`${LatencyKey}Ms`, number>>): void {
    const labels = { model_name: this.options.model, clock };
    for (const key of Object.keys(LATENCY_METRICS) as LatencyKey[]) {
      const ms = f[`${key}Ms`];
      if (ms !== undefined && Number.isFinite(ms)) this.latency[key].observe(labels, ms / 1000);
    }
  }

  private countRequest(route: string, mode: RoutingMode, outcome: RequestOutcome, reason: string): void {
    this.requests.inc({ model_name: this.options.model, route, mode, outcome, reason });
  }

  private watch(id: string, mode: RoutingMode): Watched {
    let w = this.watched.get(id);
    if (!w) {
      if (this.watched.size >= MAX_TRACKED) this.watched.delete(this.watched.keys().next().value!);
      w = { mode, route: 'unknown', busyOn: null, queuedAtEmulatedMs: null, emulatedQueueMs: null, kvHeldBytes: 0 };
      this.watched.set(id, w);
    }
    w.mode = mode;
    return w;
  }

  /** Moves a request onto a pool (or off every pool), at the stamp's time. */
  private occupy(w: Watched, pool: PoolName | null, atMs: number): void {
    if (w.busyOn === pool) return;
    if (w.busyOn !== null) this.meters[w.busyOn].change(atMs, -1);
    if (pool !== null) this.meters[pool].change(atMs, +1);
    w.busyOn = pool;
  }

  /** Sets the bytes of a request's stored KV blob waiting for decode (0: taken or gone). */
  private holdKv(w: Watched, bytes: number): void {
    if (w.kvHeldBytes > 0) this.kvHeld = { blobs: this.kvHeld.blobs - 1, bytes: this.kvHeld.bytes - w.kvHeldBytes };
    if (bytes > 0) this.kvHeld = { blobs: this.kvHeld.blobs + 1, bytes: this.kvHeld.bytes + bytes };
    w.kvHeldBytes = bytes;
  }

  private registerGauges(model: string, registers: Registry[]): void {
    const occupancy = this.options.occupancy;
    const prefilling = (): number => [...this.watched.values()].filter((w) => w.busyOn === 'prefill').length;
    new Gauge({
      name: METRIC.running,
      help: 'Requests in a running batch: prefilling, or in the decode (or colocated) batch.',
      labelNames: ['model_name'],
      registers,
      collect() {
        this.set({ model_name: model }, occupancy().decodeBatch + prefilling());
      },
    });
    new Gauge({
      name: METRIC.waiting,
      help: 'Requests waiting for prefill or for a place in the decode batch.',
      labelNames: ['model_name'],
      registers,
      collect() {
        const o = occupancy();
        this.set({ model_name: model }, Math.max(0, o.prefillQueue - prefilling()) + o.decodeQueue);
      },
    });
    new Gauge({
      name: METRIC.queueDepth,
      help: 'Requests waiting for or in prefill (queue=prefill), handed off and waiting for decode (queue=decode).',
      labelNames: ['queue'],
      registers,
      collect() {
        const o = occupancy();
        this.set({ queue: 'prefill' }, o.prefillQueue);
        this.set({ queue: 'decode' }, o.decodeQueue);
      },
    });
    new Gauge({
      name: METRIC.decodeBatch,
      help: 'Requests in the running decode batch (the colocated batch included).',
      registers,
      collect() {
        this.set(occupancy().decodeBatch);
      },
    });
    const meters = this.meters;
    const now = this.now;
    const pools = Object.keys(meters) as PoolName[];
    new Gauge({
      name: METRIC.poolBusyRatio,
      help: `Fraction of the last ${BUSY_WINDOW_MS / 1000} s each pool was busy (prefill: per replica; decode and colocated: batch not empty).`,
      labelNames: ['pool'],
      registers,
      collect() {
        const at = now();
        for (const pool of pools) this.set({ pool }, meters[pool].ratio(at));
      },
    });
    const counted: Record<PoolName, number> = { prefill: 0, decode: 0, colocated: 0 };
    new Counter({
      name: METRIC.poolBusySeconds,
      help: 'Seconds each pool was busy, as pool_busy_ratio counts them.',
      labelNames: ['pool'],
      registers,
      collect() {
        const at = now();
        for (const pool of pools) {
          const total = meters[pool].totalBusyMs(at) / 1000;
          this.inc({ pool }, Math.max(0, total - counted[pool]));
          counted[pool] = Math.max(counted[pool], total);
        }
      },
    });
    const held = (): { blobs: number; bytes: number } => this.kvHeld;
    new Gauge({
      name: METRIC.kvBlobsHeld,
      help: 'KV blobs in the KV store, put by prefill and not yet taken by decode.',
      registers,
      collect() {
        this.set(held().blobs);
      },
    });
    new Gauge({
      name: METRIC.kvBytesHeld,
      help: 'Bytes of the KV blobs in the KV store waiting for decode.',
      registers,
      collect() {
        this.set(held().bytes);
      },
    });
  }
}
