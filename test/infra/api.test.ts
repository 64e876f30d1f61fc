import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { API_ROUTES } from '../../lib/infra/inference-api';
import { AWS, DESCRIPTIONS, functionLogicalId, LOCALSTACK, resourcesOf, synth } from './synth';

type Props = Record<string, unknown>;

/** Every method as "VERB /full/path", resolved through the resource tree. */
function methods(template: ReturnType<typeof synth>['template']): Map<string, Props> {
  const resources = resourcesOf(template, 'AWS::ApiGateway::Resource');
  const pathOf = (ref: unknown): string => {
    const id = (ref as { Ref?: string }).Ref;
    if (!id || !resources[id]) return '';
    const props = resources[id].Properties!;
    return `${pathOf(props.ParentId)}/${String(props.PathPart)}`;
  };
  const out = new Map<string, Props>();
  for (const method of Object.values(resourcesOf(template, 'AWS::ApiGateway::Method'))) {
    const props = method.Properties!;
    out.set(`${String(props.HttpMethod)} ${pathOf(props.ResourceId)}`, props);
  }
  return out;
}

describe('InferenceApi routes', () => {
  for (const [profile, context] of [
    ['aws', AWS],
    ['localstack', LOCALSTACK],
  ] as const) {
    it(`serves exactly the embedded server's routes (${profile})`, () => {
      const found = [...methods(synth(context).template).keys()].sort();
      expect(found).toEqual(API_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
      expect(found).toEqual(
        [
          'DELETE /v1/requests/{id}',
          'GET /healthz',
          'GET /v1/models',
          'GET /v1/models/{id}',
          'GET /v1/requests/{id}',
          'POST /v1/chat/completions',
          'POST /v1/completions',
          'POST /v1/responses',
        ].sort(),
      );
    });
  }

  it('requires the API key on every route but the health check', () => {
    for (const [route, props] of methods(synth(AWS).template)) {
      expect([route, props.ApiKeyRequired]).toEqual([route, route !== 'GET /healthz']);
    }
  });

  it('requires no API key anywhere with apiKeyRequired=false, and creates no key or usage plan', () => {
    const { template } = synth({ ...AWS, apiKeyRequired: 'false' });
    for (const props of methods(template).values()) expect(props.ApiKeyRequired).toBe(false);
    template.resourceCountIs('AWS::ApiGateway::ApiKey', 0);
    template.resourceCountIs('AWS::ApiGateway::UsagePlan', 0);
  });

  it('attaches the key to a usage plan that throttles at the configured rate and burst', () => {
    const { template } = synth({ ...AWS, throttleRateLimit: '25', throttleBurstLimit: '50' });
    template.resourceCountIs('AWS::ApiGateway::ApiKey', 1);
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Throttle: { RateLimit: 25, BurstLimit: 50 },
      ApiStages: [Match.objectLike({ Stage: Match.anyValue() })],
    });
    template.resourceCountIs('AWS::ApiGateway::UsagePlanKey', 1);
  });

  it('validates POST bodies against JSON-schema models requiring model and messages / prompt', () => {
    const { template } = synth(AWS);
    template.hasResourceProperties('AWS::ApiGateway::RequestValidator', {
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
    const models = Object.values(resourcesOf(template, 'AWS::ApiGateway::Model')).map((m) => m.Properties!);
    const schemaOf = (name: string): Props => models.find((m) => m.Name === name)?.Schema as Props;
    expect(schemaOf('ChatCompletionRequest')).toMatchObject({ type: 'object', required: ['model', 'messages'] });
    expect(schemaOf('CompletionRequest')).toMatchObject({ type: 'object', required: ['model', 'prompt'] });
    const found = methods(template);
    for (const route of ['POST /v1/chat/completions', 'POST /v1/completions']) {
      const props = found.get(route)!;
      expect(props.RequestValidatorId).toBeDefined();
      expect(Object.keys(props.RequestModels as Props)).toEqual(['application/json']);
      const modelRef = JSON.stringify(props.RequestModels);
      if (route.includes('chat')) {
        expect(modelRef).toMatch(/ChatCompletionRequest/);
      } else {
        expect(modelRef).toMatch(/CompletionRequest/);
        expect(modelRef).not.toMatch(/ChatCompletionRequest/);
      }
    }
  });

  it('writes JSON access logs to its own log group and traces the stage with X-Ray', () => {
    const { template } = synth(AWS);
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      TracingEnabled: true,
      AccessLogSetting: {
        DestinationArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('AccessLogs'), 'Arn'] },
        Format: Match.stringLikeRegexp('"requestId":"\\$context.requestId"'),
      },
      MethodSettings: [
        Match.objectLike({
          LoggingLevel: 'ERROR',
          DataTraceEnabled: false,
          ThrottlingRateLimit: 10,
          ThrottlingBurstLimit: 20,
        }),
      ],
    });
  });
});

describe('InferenceApi SSE', () => {
  it('streams the POST routes on aws through the streamHandler, with the response-streaming URI', () => {
    const { template } = synth(AWS);
    const streamFn = functionLogicalId(template, DESCRIPTIONS.apiStream);
    const bufferedFn = functionLogicalId(template, DESCRIPTIONS.api);
    expect(resourcesOf(template, 'AWS::Lambda::Function')[streamFn]?.Properties?.Handler).toBe('index.streamHandler');
    for (const [route, props] of methods(template)) {
      const integration = props.Integration as Props;
      const uri = JSON.stringify(integration.Uri);
      if (route.startsWith('POST')) {
        expect(integration.ResponseTransferMode).toBe('STREAM');
        expect(uri).toContain('/response-streaming-invocations');
        expect(uri).toContain(streamFn);
      } else {
        expect(integration.ResponseTransferMode ?? 'BUFFERED').toBe('BUFFERED');
        expect(uri).toContain(bufferedFn);
        expect(uri).not.toContain('response-streaming');
      }
    }
  });

  it("lets a stream run past 30 s: its own function timeout and a streaming integration timeout, up to REST streaming's 15 minutes", () => {
    const { template } = synth(AWS);
    const streamFn = functionLogicalId(template, DESCRIPTIONS.apiStream);
    expect(resourcesOf(template, 'AWS::Lambda::Function')[streamFn]?.Properties?.Timeout).toBe(305);
    expect(
      resourcesOf(template, 'AWS::Lambda::Function')[functionLogicalId(template, DESCRIPTIONS.api)]?.Properties
        ?.Timeout,
    ).toBe(28);
    for (const [route, props] of methods(template)) {
      const integration = props.Integration as Props;
      if (route.startsWith('POST')) expect(integration.TimeoutInMillis).toBe(305_000);
      else expect(integration.TimeoutInMillis ?? 29_000).toBeLessThanOrEqual(29_000);
    }
    const longer = synth({ ...AWS, apiStreamTimeoutSeconds: '900' }).template;
    expect(
      resourcesOf(longer, 'AWS::Lambda::Function')[functionLogicalId(longer, DESCRIPTIONS.apiStream)]?.Properties
        ?.Timeout,
    ).toBe(900);
  });

  it('buffers SSE on localstack: one function, no streaming integration', () => {
    const { template } = synth(LOCALSTACK);
    expect(() => functionLogicalId(template, DESCRIPTIONS.apiStream)).toThrow(/found 0/);
    for (const props of methods(template).values()) {
      const integration = props.Integration as Props;
      expect(integration.ResponseTransferMode ?? 'BUFFERED').toBe('BUFFERED');
      expect(JSON.stringify(integration.Uri)).not.toContain('response-streaming');
    }
  });
});

describe('InferenceApi account-level logging setting', () => {
  it('keeps the CloudWatch role and the account setting on destroy, even with removalPolicy=destroy', () => {
    const { template } = synth(AWS);
    template.resourceCountIs('AWS::ApiGateway::Account', 1);
    template.hasResource('AWS::ApiGateway::Account', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    const role = Object.values(template.findResources('AWS::IAM::Role')).find((r) =>
      JSON.stringify(r).includes('AmazonAPIGatewayPushToCloudWatchLogs'),
    );
    expect(role).toMatchObject({ DeletionPolicy: 'Retain' });
  });

  it('sets the account after the functions exist, giving the new role time to become usable', () => {
    const { template } = synth(AWS);
    const account = Object.values(template.findResources('AWS::ApiGateway::Account'))[0] as { DependsOn?: string[] };
    for (const description of [DESCRIPTIONS.api, DESCRIPTIONS.apiStream]) {
      expect(account.DependsOn).toContain(functionLogicalId(template, description));
    }
  });

  it('leaves the account setting alone with apiGatewayCloudWatchRole=existing', () => {
    const { template } = synth({ ...AWS, apiGatewayCloudWatchRole: 'existing' });
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
    const roles = JSON.stringify(template.findResources('AWS::IAM::Role'));
    expect(roles).not.toContain('AmazonAPIGatewayPushToCloudWatchLogs');
    // Access logs still go to the stack's log group, through the role the account already names.
    template.hasResourceProperties('AWS::ApiGateway::Stage', { AccessLogSetting: Match.anyValue() });
  });
});

describe('DisaggStack outputs', () => {
  it('exports the API URL, the OpenAI base URL, the API key id (never its value), the queue URLs and the table name', () => {
    const { template } = synth(AWS);
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown; Description?: string }>;
    for (const name of [
      'ApiUrl',
      'OpenAiBaseUrl',
      'ApiKeyId',
      'HandoffQueueUrl',
      'DeadLetterQueueUrl',
      'ResultsTableName',
    ]) {
      expect(outputs[name], name).toBeDefined();
    }
    expect(outputs.ApiKeyId?.Value).toEqual({ Ref: expect.stringMatching(/ApiKey/) });
    expect(outputs.ApiKeyId?.Description).toContain('aws apigateway get-api-key --api-key <id> --include-value');
    // <stage URL>v1, and the stage is not called v1, so the base URL does not read /v1/v1.
    const parts = (outputs.OpenAiBaseUrl?.Value as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
    expect(parts.at(-1)).toBe('/v1');
    template.hasResourceProperties('AWS::ApiGateway::Stage', { StageName: 'api' });
  });

  it('omits the API key id when no key is required', () => {
    const outputs = synth({ ...LOCALSTACK, apiKeyRequired: 'false' }).template.toJSON().Outputs as Record<
      string,
      unknown
    >;
    expect(outputs.ApiKeyId).toBeUndefined();
    expect(outputs.KvBucketName).toBeDefined();
  });
});

describe('InferenceApi keys and CORS', () => {
  it('reads the key through a request authorizer (Bearer or x-api-key) and checks it against the usage plan', () => {
    const { template } = synth(AWS);
    template.hasResourceProperties('AWS::ApiGateway::RestApi', { ApiKeySourceType: 'AUTHORIZER' });
    const authorizers = Object.values(resourcesOf(template, 'AWS::ApiGateway::Authorizer'));
    expect(authorizers).toHaveLength(1);
    // Uncached and with no identity source: the key may come in either header.
    expect(authorizers[0]!.Properties).toMatchObject({ Type: 'REQUEST', AuthorizerResultTtlInSeconds: 0 });
    expect(authorizers[0]!.Properties?.IdentitySource ?? '').toBe('');
    for (const [route, props] of methods(template)) {
      const keyed = route !== 'GET /healthz';
      expect([route, props.AuthorizationType, props.ApiKeyRequired]).toEqual([route, keyed ? 'CUSTOM' : 'NONE', keyed]);
    }
    // API Gateway's refusals speak the API's error format: a missing or wrong key is a 401 invalid_api_key.
    for (const type of ['UNAUTHORIZED', 'INVALID_API_KEY']) {
      template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
        ResponseType: type,
        StatusCode: '401',
        ResponseTemplates: { 'application/json': Match.stringLikeRegexp('"code":"invalid_api_key"') },
      });
    }
    const bodies = Object.values(resourcesOf(template, 'AWS::ApiGateway::GatewayResponse')).map(
      (r) => (r.Properties?.ResponseTemplates as Record<string, string>)['application/json']!,
    );
    // Each is JSON once API Gateway fills in its variables (messageString arrives quoted).
    for (const body of bodies) {
      const filled = body
        .replace('$context.error.messageString', '"Forbidden"')
        .replace('$context.error.validationErrorString', 'bad body');
      expect(JSON.parse(filled)).toMatchObject({ error: { type: expect.any(String), code: expect.any(String) } });
    }
  });

  it('without corsOrigins adds no OPTIONS methods and no CORS headers', () => {
    const { template } = synth(AWS);
    expect([...methods(template).keys()].filter((m) => m.startsWith('OPTIONS'))).toEqual([]);
    expect(JSON.stringify(template.toJSON())).not.toContain('Access-Control-Allow-Origin');
  });

  it('with corsOrigins answers preflights without a key and lets the functions add the allow headers', () => {
    const origins = 'https://dash.example.com,http://localhost:8080';
    const { template } = synth({ ...AWS, corsOrigins: origins });
    const all = methods(template);
    const preflights = [...all].filter(([m]) => m.startsWith('OPTIONS '));
    // One per resource that has a route.
    for (const route of API_ROUTES) expect(all.has(`OPTIONS ${route.path}`)).toBe(true);
    for (const [route, props] of preflights) {
      expect([route, props.AuthorizationType, props.ApiKeyRequired ?? false]).toEqual([route, 'NONE', false]);
      const integration = props.Integration as {
        Type: string;
        IntegrationResponses: {
          ResponseParameters: Record<string, string>;
          ResponseTemplates?: Record<string, string>;
        }[];
      };
      expect(integration.Type).toBe('MOCK');
      const headers = integration.IntegrationResponses[0]!.ResponseParameters;
      const allowed = headers['method.response.header.Access-Control-Allow-Headers']!.toLowerCase();
      for (const h of ['authorization', 'x-api-key', 'x-request-id', 'content-type']) expect(allowed).toContain(h);
      // Two origins: the answer names the caller's origin only when it is one of them.
      const answer = JSON.stringify(integration.IntegrationResponses[0]);
      expect(answer).toContain('https://dash.example.com');
      expect(answer).toContain('http://localhost:8080');
    }
    // The API functions get the list, to add Access-Control-Allow-Origin to every answer.
    for (const description of [DESCRIPTIONS.api, DESCRIPTIONS.apiStream]) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Description: Match.stringLikeRegexp(`^${description}`),
        Environment: { Variables: Match.objectLike({ DISAGG_CORS_ORIGINS: origins }) },
      });
    }
    // API Gateway's own 401s carry the caller's origin too, so a page can read them and ask for a key.
    template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'UNAUTHORIZED',
      ResponseParameters: Match.objectLike({
        'gatewayresponse.header.Access-Control-Allow-Origin': 'method.request.header.origin',
      }),
    });
  });

  it('refuses a corsOrigins entry that is not an origin, naming the key', () => {
    expect(() => synth({ ...AWS, corsOrigins: 'https://dash.example.com/path' })).toThrow(
      /corsOrigins takes \* or origins like http:\/\/localhost:3000.*got "https:\/\/dash.example.com\/path"/,
    );
  });
});
