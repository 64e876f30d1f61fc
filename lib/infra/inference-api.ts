/**
 * The OpenAI-compatible front door: a REST API with the embedded server's routes, an API key and usage
 * plan, request-body validation, access logs and tracing. On AWS the two POST routes stream (API Gateway
 * response streaming into the function's `streamHandler`); elsewhere SSE is buffered into one response.
 */
import { Validations, type RemovalPolicy } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DEPLOYMENT_ENV } from '../core/engine/deployment-env';
import type { FunctionSize } from './config';
import { DisaggFunction, LAMBDA_ENTRIES, type FunctionNetwork } from './disagg-function';

/** Every route, as the embedded HTTP server serves them. */
export const API_ROUTES = [
  { method: 'POST', path: '/v1/chat/completions' },
  { method: 'POST', path: '/v1/completions' },
  { method: 'POST', path: '/v1/responses' },
  { method: 'GET', path: '/v1/models' },
  { method: 'GET', path: '/v1/models/{id}' },
  { method: 'GET', path: '/v1/requests/{id}' },
  { method: 'DELETE', path: '/v1/requests/{id}' },
  { method: 'GET', path: '/healthz' },
] as const;

/** A health check must answer load balancers and uptime probes that hold no key. */
const OPEN_ROUTES: ReadonlySet<string> = new Set(['GET /healthz']);

/** The same bounds the handler's request parser applies (lib/core/api/limits.ts), checked at the gateway first. */
const MAX_MESSAGES = 2048;
const MAX_MODEL_CHARS = 256;

export interface InferenceApiProps {
  readonly size: FunctionSize;
  readonly environment: Readonly<Record<string, string>>;
  /** True: the POST routes use response streaming (AWS). False: buffered SSE (LocalStack). */
  readonly streaming: boolean;
  readonly apiKeyRequired: boolean;
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  readonly network?: FunctionNetwork;
  readonly tokenizerFamily?: string;
}

export class InferenceApi extends Construct {
  readonly api: apigateway.RestApi;
  /** Serves every buffered route (all of them when streaming is off); handler `handler`. */
  readonly function: DisaggFunction['function'];
  /** Serves the POST routes when streaming is on; handler `streamHandler`. */
  readonly streamFunction?: DisaggFunction['function'];
  readonly accessLogGroup: logs.LogGroup;
  readonly apiKey?: apigateway.IApiKey;
  readonly usagePlan?: apigateway.UsagePlan;
  readonly requestValidator: apigateway.RequestValidator;

  constructor(scope: Construct, id: string, props: InferenceApiProps) {
    super(scope, id);
    const functionProps = {
      entry: LAMBDA_ENTRIES.api,
      size: props.size,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      network: props.network,
      tokenizerFamily: props.tokenizerFamily,
    };
    this.function = new DisaggFunction(this, 'ApiHandler', {
      ...functionProps,
      description: 'Disagg API: OpenAI-compatible routes, admission, async prefill invoke, results',
      // API Gateway REST caps payloads at 10 MB and Lambda's synchronous invoke at 6 MB; the handler's token limits are the real bound.
      environment: { ...props.environment, [DEPLOYMENT_ENV.sseMode]: 'buffered' },
    }).function;
    if (props.streaming) {
      this.streamFunction = new DisaggFunction(this, 'ApiStreamHandler', {
        ...functionProps,
        handler: 'streamHandler',
        description: 'Disagg API, streaming routes: SSE through API Gateway response streaming',
        environment: { ...props.environment, [DEPLOYMENT_ENV.sseMode]: 'stream' },
      }).function;
    }

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: props.removalPolicy,
    });
    this.api = new apigateway.RestApi(this, 'RestApi', {
      description: 'Disagg: disaggregated LLM inference (OpenAI-compatible)',
      endpointConfiguration: { types: [apigateway.EndpointType.REGIONAL] },
      // Access and execution logs need the account-level CloudWatch role; this stack owns it in a sandbox.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: props.removalPolicy,
      deployOptions: {
        // Not "v1": the routes already start with /v1, so an OpenAI client's base URL is <stage URL>v1.
        stageName: 'api',
        tracingEnabled: true,
        accessLogDestination: new apigateway.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigateway.AccessLogFormat.jsonWithStandardFields(),
        // Errors only, and never request bodies: prompts are user data.
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        throttlingRateLimit: props.throttle.rateLimit,
        throttlingBurstLimit: props.throttle.burstLimit,
      },
    });
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        "The account-level role API Gateway writes access and execution logs with; API Gateway creates its own log groups, so AWS's managed policy is the documented one.",
    });
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG3',
      reason:
        'Sandbox reference: the API key, usage plan and stage throttling bound abuse; a WAF web ACL is a monthly fixed cost a production deployment attaches.',
    });
    for (const rule of ['AwsSolutions-APIG4', 'AwsSolutions-COG4']) {
      Validations.of(this.api).acknowledge({
        id: rule,
        reason:
          'The API has no end-user identity (OpenAI-compatible clients send an API key); API keys and the usage plan gate it. Production fronts it with an IAM or Cognito authorizer.',
      });
    }

    this.requestValidator = this.api.addRequestValidator('BodyValidator', {
      requestValidatorName: 'body-and-parameters',
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    const models = requestModels(this.api);
    const buffered = new apigateway.LambdaIntegration(this.function);
    const postIntegration = this.streamFunction
      ? new apigateway.LambdaIntegration(this.streamFunction, {
          // The installed L2 supports streaming: it switches the URI to /response-streaming-invocations.
          responseTransferMode: apigateway.ResponseTransferMode.STREAM,
        })
      : buffered;

    for (const route of API_ROUTES) {
      const resource = this.api.root.resourceForPath(route.path);
      const model = route.method === 'POST' ? models[route.path] : undefined;
      resource.addMethod(route.method, route.method === 'POST' ? postIntegration : buffered, {
        apiKeyRequired: props.apiKeyRequired && !OPEN_ROUTES.has(`${route.method} ${route.path}`),
        requestValidator: this.requestValidator,
        requestModels: model ? { 'application/json': model } : undefined,
        requestParameters: route.path.includes('{id}') ? { 'method.request.path.id': true } : undefined,
      });
    }

    if (props.apiKeyRequired) {
      this.usagePlan = this.api.addUsagePlan('UsagePlan', {
        description: 'Disagg: per-key throttling',
        throttle: { rateLimit: props.throttle.rateLimit, burstLimit: props.throttle.burstLimit },
        apiStages: [{ api: this.api, stage: this.api.deploymentStage }],
      });
      this.apiKey = this.api.addApiKey('ApiKey', { description: 'Disagg API key' });
      this.apiKey.applyRemovalPolicy(props.removalPolicy);
      this.usagePlan.addApiKey(this.apiKey);
    }
  }

  /** Every function serving the API, so the stack can grant them the same data access. */
  get functions(): DisaggFunction['function'][] {
    return this.streamFunction ? [this.function, this.streamFunction] : [this.function];
  }

  /** The principals of the API functions. */
  get grantables(): iam.IGrantable[] {
    return this.functions;
  }
}

/** JSON-schema models for the POST bodies: the required fields, checked before the function runs. */
function requestModels(api: apigateway.RestApi): Record<string, apigateway.Model> {
  const model = { type: apigateway.JsonSchemaType.STRING, minLength: 1, maxLength: MAX_MODEL_CHARS };
  const chat = api.addModel('ChatCompletionRequest', {
    contentType: 'application/json',
    modelName: 'ChatCompletionRequest',
    schema: {
      schema: apigateway.JsonSchemaVersion.DRAFT4,
      title: 'ChatCompletionRequest',
      type: apigateway.JsonSchemaType.OBJECT,
      required: ['model', 'messages'],
      properties: {
        model,
        messages: {
          type: apigateway.JsonSchemaType.ARRAY,
          minItems: 1,
          maxItems: MAX_MESSAGES,
          items: { type: apigateway.JsonSchemaType.OBJECT, required: ['role'] },
        },
      },
    },
  });
  const completion = api.addModel('CompletionRequest', {
    contentType: 'application/json',
    modelName: 'CompletionRequest',
    schema: {
      schema: apigateway.JsonSchemaVersion.DRAFT4,
      title: 'CompletionRequest',
      type: apigateway.JsonSchemaType.OBJECT,
      required: ['model', 'prompt'],
      properties: {
        model,
        // A string, or an array holding one string, as the handler's parser accepts.
        prompt: { type: [apigateway.JsonSchemaType.STRING, apigateway.JsonSchemaType.ARRAY], maxItems: 1 },
      },
    },
  });
  return { '/v1/chat/completions': chat, '/v1/completions': completion };
}
