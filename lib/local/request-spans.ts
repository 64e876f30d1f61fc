/**
 * The root span of each request in the embedded server: opened when the API submits it (under the client's
 * `traceparent`, if it sent one), handed to the stages as the prefill job's traceparent, and closed when the
 * request ends, with its timeline stamps as span events. The stages' own spans (lib/local/stages.ts) are its
 * children, in whichever thread they run.
 */
import type { Tracing, StageSpan } from '../adapters/telemetry';
import type { RequestEvent } from '../core/engine/record';

/** Open root spans beyond this are ended early, so a request that never ends cannot hold memory for ever. */
const MAX_OPEN = 20_000;

export class RequestSpans {
  private readonly open = new Map<string, StageSpan>();

  constructor(private readonly tracing: Tracing) {}

  /** Opens the request's span; returns the traceparent its stages work under. */
  begin(id: string, clientTraceparent: string | undefined): string | undefined {
    if (!this.tracing.enabled) return clientTraceparent;
    if (this.open.size >= MAX_OPEN) {
      const [oldest, span] = this.open.entries().next().value!;
      span.end();
      this.open.delete(oldest);
    }
    const span = this.tracing.start('disagg.request', clientTraceparent, { 'disagg.request_id': id });
    this.open.set(id, span);
    return span.traceparent;
  }

  /** Every pipeline event (MemoryEventBus.watchAll): stamps become span events; the end closes the span. */
  observe(id: string, event: RequestEvent): void {
    const span = this.open.get(id);
    if (!span) return;
    if (event.type === 'timeline') {
      span.addEvent(event.stamp.event, {
        'disagg.measured_ms': event.stamp.measuredMs,
        'disagg.emulated_ms': event.stamp.emulatedMs,
      });
    } else if (event.type === 'done') {
      const r = event.record;
      span.setAttributes({
        'disagg.mode': r.mode,
        'disagg.state': r.state,
        'disagg.prompt_tokens': r.promptTokens,
        'disagg.output_tokens': r.completionTokens,
        'disagg.emulated_e2e_ms': r.emulated.e2eMs,
        'disagg.emulated_ttft_ms': r.emulated.ttftMs,
      });
      if (r.state === 'failed' || r.state === 'rejected') span.fail(r.error?.code ?? r.state);
      span.end();
      this.open.delete(id);
    }
  }

  /** Forgets a request that never reached the pipeline (refused at admission), ending its span. */
  abandon(id: string, code: string): void {
    const span = this.open.get(id);
    if (!span) return;
    span.fail(code);
    span.end();
    this.open.delete(id);
  }
}
