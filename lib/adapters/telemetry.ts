/**
 * Traces across the split, with OpenTelemetry: each stage opens its span as a child of the W3C `traceparent`
 * it was handed (the client's header, the prefill job, the handoff descriptor), so the prefill span in one
 * thread or function and the decode span in another join in one trace. Off unless the standard OTEL_*
 * variables ask for it; spans then go over OTLP/HTTP to OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, or to stderr with
 * OTEL_TRACES_EXPORTER=console. No global provider or context manager is installed: parents are passed by
 * hand, so nothing else in the process is instrumented behind the caller's back.
 */
import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { validTraceparent } from '../core/handoff/traceparent';

export { validTraceparent };

/** One open span, or a stand-in when tracing is off. */
export interface StageSpan {
  /**
   * The W3C traceparent to hand to the next stage: this span's when tracing is on, else the parent it was
   * opened under (passed through unchanged, so a trace the client started still reaches the next hop).
   */
  readonly traceparent: string | undefined;
  setAttributes(attributes: Attributes): void;
  addEvent(name: string, attributes?: Attributes): void;
  /** Marks the span failed with a code (an error code of the request, never its text). */
  fail(code: string): void;
  end(endTimeMs?: number): void;
}

export interface Tracing {
  readonly enabled: boolean;
  /** Opens a span under `parent` (a traceparent), or a new trace when there is none or it is malformed. */
  start(name: string, parent: string | undefined, attributes?: Attributes, startTimeMs?: number): StageSpan;
  /** Sends what is buffered (a Lambda invocation calls it before returning: a frozen process sends nothing). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

const propagator = new W3CTraceContextPropagator();

/** Tracing that records nothing and passes the parent on. */
export const TRACING_OFF: Tracing = {
  enabled: false,
  start: (_name, parent) => ({
    traceparent: validTraceparent(parent),
    setAttributes: () => undefined,
    addEvent: () => undefined,
    fail: () => undefined,
    end: () => undefined,
  }),
  flush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

export interface TracingOptions {
  /** `service.name` unless OTEL_SERVICE_NAME says otherwise. */
  readonly serviceName: string;
  /** Export to this instead of what the environment names (tests). Spans are then sent one by one. */
  readonly exporter?: SpanExporter;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Whether the environment asks for traces: OTEL_TRACES_EXPORTER=otlp or console, or an OTLP endpoint set;
 * never with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. Off by default, unlike the SDK's own
 * default, because a server that nobody pointed at a collector should not retry exports to localhost.
 */
export function tracesExporterFromEnv(env: Env): 'otlp' | 'console' | null {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return null;
  const named = (env.OTEL_TRACES_EXPORTER ?? '').trim().toLowerCase();
  if (named === 'none') return null;
  if (named === 'console') return 'console';
  if (named === 'otlp') return 'otlp';
  const endpoint = (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').trim();
  return endpoint === '' ? null : 'otlp';
}

/** Tracing as the environment configures it (see tracesExporterFromEnv), or TRACING_OFF. */
export function tracingFromEnv(env: Env, options: TracingOptions): Tracing {
  const kind = options.exporter ? 'given' : tracesExporterFromEnv(env);
  if (kind === null) return TRACING_OFF;
  const exporter = options.exporter ?? (kind === 'console' ? new ConsoleSpanExporter() : new OTLPTraceExporter());
  const processor = options.exporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME?.trim() || options.serviceName }),
    spanProcessors: [processor],
  });
  return new OtelTracing(provider, provider.getTracer('disagg'));
}

class OtelTracing implements Tracing {
  readonly enabled = true;

  constructor(
    private readonly provider: BasicTracerProvider,
    private readonly tracer: Tracer,
  ) {}

  start(name: string, parent: string | undefined, attributes?: Attributes, startTimeMs?: number): StageSpan {
    const valid = validTraceparent(parent);
    const parentContext = valid
      ? propagator.extract(ROOT_CONTEXT, { traceparent: valid }, { get: (c, k) => c[k], keys: Object.keys })
      : ROOT_CONTEXT;
    const span = this.tracer.startSpan(
      name,
      { ...(attributes ? { attributes } : {}), ...(startTimeMs !== undefined ? { startTime: startTimeMs } : {}) },
      parentContext,
    );
    return spanHandle(span);
  }

  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

function spanHandle(span: Span): StageSpan {
  const carrier: Record<string, string> = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, {
    set: (c, k, v) => void (c[k] = v),
  });
  let ended = false;
  return {
    traceparent: carrier.traceparent,
    setAttributes: (attributes) => void span.setAttributes(attributes),
    addEvent: (name, attributes) => void span.addEvent(name, attributes),
    fail: (code) => void span.setStatus({ code: SpanStatusCode.ERROR, message: code }),
    end: (endTimeMs) => {
      if (ended) return;
      ended = true;
      span.end(endTimeMs);
    },
  };
}
