/** A REST API Gateway proxy event (Lambda proxy integration), as API Gateway builds it for a request. */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent } from 'aws-lambda';

export function apiEvent(
  method: string,
  path: string,
  init: {
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
    /** The matched resource (`/v1/requests/{id}`) and its path parameters; default a `{proxy+}` resource. */
    resource?: string;
    pathParameters?: Record<string, string> | null;
  } = {},
): APIGatewayProxyEvent {
  const body = init.rawBody ?? (init.body === undefined ? null : JSON.stringify(init.body));
  const headers: Record<string, string> = {
    Accept: 'application/json',
    Host: 'abc123defg.execute-api.us-east-1.amazonaws.com',
    'User-Agent': 'OpenAI/JS 6.49.0',
    'X-Forwarded-For': '203.0.113.7',
    'X-Forwarded-Proto': 'https',
    ...(body === null ? {} : { 'Content-Type': 'application/json' }),
    ...init.headers,
  };
  const requestId = randomUUID();
  return {
    httpMethod: method,
    path,
    resource: init.resource ?? '/{proxy+}',
    pathParameters: init.pathParameters !== undefined ? init.pathParameters : { proxy: path.replace(/^\//, '') },
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]])),
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    body,
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123defg',
      authorizer: undefined,
      protocol: 'HTTP/1.1',
      httpMethod: method,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: '203.0.113.7',
        user: null,
        userAgent: 'OpenAI/JS 6.49.0',
        userArn: null,
      },
      path: `/prod${path}`,
      stage: 'prod',
      requestId,
      extendedRequestId: requestId,
      requestTimeEpoch: Date.now(),
      resourceId: 'a1b2c3',
      resourcePath: init.resource ?? '/{proxy+}',
      domainName: 'abc123defg.execute-api.us-east-1.amazonaws.com',
    },
  };
}
