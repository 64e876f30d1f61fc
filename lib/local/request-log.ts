/**
 * The embedded server's structured log, with pino: one JSON line per request when it ends (ids, route, mode,
 * devices, token counts, emulated and measured times, outcome), a warning for request fields nothing acts on,
 * and the API's own debug and error lines. Never a prompt or a completion: the line is built from named
 * fields of the record, and `pieces` (the text) is not one of them.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { ApiLog, CompletionSeen } from '../core/api/app';
import type { RequestEvent, RequestRecord } from '../core/engine/record';
import { requestFigures, type PhaseFigures } from '../core/engine/request-figures';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** JSON lines at `level` and above to `destination` (default: standard output, written asynchronously). */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'disagg' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** The application's log (lib/core/api/app.ts) on a pino logger. */
export function apiLog(logger: Logger): ApiLog {
  return {
    debug: (msg, attributes) => logger.debug(attributes ?? {}, msg),
    warn: (msg, attributes) => logger.warn(attributes ?? {}, msg),
    error: (msg, attributes) => logger.error(attributes ?? {}, msg),
  };
}

/** Rounded to a microsecond: a log line is read by people, and sub-microsecond digits are noise. */
const round = (ms: number): number => Math.round(ms * 1000) / 1000;

function roundFigures(f: PhaseFigures): Record<string, number> {
  return Object.fromEntries(Object.entries(f).map(([k, v]) => [k, round(v as number)]));
}

/** Requests remembered between admission and their end, for the route and x-request-id of their line. */
const MAX_REMEMBERED = 20_000;

export class RequestLog {
  private readonly seen = new Map<string, CompletionSeen>();

  constructor(private readonly logger: Logger) {}

  accepted(seen: CompletionSeen): void {
    if (this.seen.size >= MAX_REMEMBERED) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(seen.id, seen);
  }

  rejected(seen: CompletionSeen & { readonly queue: 'prefill' | 'decode' }): void {
    this.logger.warn(
      {
        id: seen.id,
        requestId: seen.requestId,
        route: seen.route,
        mode: seen.mode,
        promptTokens: seen.promptTokens,
        outcome: 'rejected',
        reason: `${seen.queue}_queue_full`,
      },
      'request rejected',
    );
  }

  /** Every pipeline event (MemoryEventBus.watchAll); writes the line when a request ends. */
  observe(id: string, event: RequestEvent): void {
    if (event.type !== 'done') return;
    const seen = this.seen.get(id);
    this.seen.delete(id);
    // A rejected request was logged at admission.
    if (event.record.state === 'rejected') return;
    this.ended(event.record, seen);
  }

  private ended(record: RequestRecord, seen: CompletionSeen | undefined): void {
    const figures = requestFigures(record);
    const line = {
      id: record.id,
      ...(seen ? { requestId: seen.requestId, route: seen.route } : {}),
      mode: record.mode,
      devices: record.devices,
      attempt: record.attempt,
      outcome: record.state,
      ...(record.finishReason ? { finishReason: record.finishReason } : {}),
      ...(record.error ? { code: record.error.code } : {}),
      promptTokens: record.promptTokens,
      outputTokens: record.completionTokens,
      emulatedMs: roundFigures(figures.emulated),
      measuredMs: roundFigures(figures.measured),
    };
    if (record.state === 'failed') this.logger.warn(line, 'request failed');
    else this.logger.info(line, `request ${record.state}`);
  }
}
