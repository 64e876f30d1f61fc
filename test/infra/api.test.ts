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
