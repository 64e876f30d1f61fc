/**
 * The REST API of a synthesized stack, as API Gateway routes it: each AWS::ApiGateway::Method's path (from the
 * resource tree), its Lambda proxy integration's function and its ResponseTransferMode. A request becomes the
 * API Gateway proxy event the function's exported handler receives; a STREAM integration is invoked as a
 * streaming function and its chunks come back with the time each arrived. API keys, usage plans and request
 * validation are API Gateway's own and are not emulated (README, "what was verified where").
 */
import { apiEvent } from '../api-gateway-event';
import type { CfnTemplate } from './deployment';
import type { LambdaService } from './lambda-service';

interface Route {
  readonly method: string;
  /** `/v1/requests/{id}` */
  readonly resource: string;
  readonly pattern: RegExp;
  readonly parameters: readonly string[];
  readonly functionId: string;
  readonly streaming: boolean;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Streamed routes: each chunk and when it arrived (epoch ms). */
  readonly chunks: readonly { readonly data: string; readonly at: number }[];
  readonly startedAt: number;
  readonly functionId: string;
}

export class RestApi {
  private readonly routes: Route[];

  constructor(
    template: CfnTemplate,
    private readonly lambda: LambdaService,
  ) {
    const resources = Object.fromEntries(
      Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::ApiGateway::Resource'),
    );
    const pathOf = (ref: unknown): string => {
      const id = (ref as { Ref?: string }).Ref;
      const resource = id ? resources[id] : undefined;
      if (!resource) return '';
      return `${pathOf(resource.Properties!.ParentId)}/${String(resource.Properties!.PathPart)}`;
    };
    const functionIds = Object.keys(template.Resources).filter(
      (id) => template.Resources[id]!.Type === 'AWS::Lambda::Function',
    );
    this.routes = Object.values(template.Resources)
      .filter((r) => r.Type === 'AWS::ApiGateway::Method')
      .map((r) => {
        const p = r.Properties as Record<string, unknown>;
        const integration = p.Integration as { Uri: unknown; ResponseTransferMode?: string };
        const uri = JSON.stringify(integration.Uri);
        const functionId = functionIds.find((id) => uri.includes(`"${id}"`));
        if (!functionId)
          throw new Error(`no function in the integration of ${String(p.HttpMethod)} ${pathOf(p.ResourceId)}`);
        const resource = pathOf(p.ResourceId) || '/';
        const parameters = [...resource.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
        return {
          method: String(p.HttpMethod),
          resource,
          pattern: new RegExp(`^${resource.replace(/\{\w+\}/g, '([^/]+)')}/?$`),
          parameters,
          functionId,
          streaming: integration.ResponseTransferMode === 'STREAM',
        };
      });
  }

  async request(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const route = this.routes.find((r) => r.method === method && r.pattern.test(path));
    if (!route) throw new Error(`API Gateway would answer 403/404: no route ${method} ${path}`);
    const values = route.pattern.exec(path)!.slice(1);
    const event = proxyEvent(method, path, route, values, body === undefined ? null : JSON.stringify(body));
    const startedAt = Date.now();
    const result = await this.lambda.invoke(route.functionId, event);
    if (result.error) {
      // API Gateway answers a failed Lambda integration with 502 (or 504 past its integration timeout).
      const status = result.error.errorType === 'Sandbox.Timedout' ? 504 : 502;
      return {
        status,
        // Not an API Gateway header: the function's error, for the test that reads this response.
        headers: { 'x-emulator-function-error': `${result.error.errorType}: ${result.error.errorMessage}` },
        body: JSON.stringify({ message: 'Internal server error' }),
        chunks: [],
        startedAt,
        functionId: route.functionId,
      };
    }
    if (route.streaming && result.stream) {
      const { statusCode, headers, chunks } = result.stream;
      return {
        status: statusCode,
        headers: lower(headers),
        body: chunks.map((c) => c.data).join(''),
        chunks,
        startedAt,
        functionId: route.functionId,
      };
    }
    const payload = result.payload as { statusCode: number; headers?: Record<string, string>; body?: string };
    return {
      status: payload.statusCode,
      headers: lower(payload.headers ?? {}),
      body: payload.body ?? '',
      chunks: [],
      startedAt,
      functionId: route.functionId,
    };
  }
}

function lower(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
}

/** The REST proxy event API Gateway sends for a request on a matched route. */
function proxyEvent(method: string, path: string, route: Route, values: string[], body: string | null): unknown {
  return apiEvent(method, path, {
    ...(body === null ? {} : { rawBody: body }),
    resource: route.resource,
    pathParameters: route.parameters.length
      ? Object.fromEntries(route.parameters.map((p, i) => [p, values[i]!]))
      : null,
  });
}
