/**
 * The deployed API's key reader: the key in `Authorization: Bearer` (any case) or `x-api-key` becomes the usage
 * identifier key API Gateway checks against the usage plan; no key is "Unauthorized" (API Gateway's 401).
 */
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { handler, UNAUTHORIZED } from '../../lambdas/authorizer';

const METHOD_ARN = 'arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/POST/v1/chat/completions';

function event(headers: Record<string, string>): APIGatewayRequestAuthorizerEvent {
  return { type: 'REQUEST', methodArn: METHOD_ARN, headers } as unknown as APIGatewayRequestAuthorizerEvent;
}

describe('the API key reader', () => {
  it.each([
    [{ Authorization: 'Bearer sk-one' }, 'sk-one'],
    [{ authorization: 'bearer sk-two' }, 'sk-two'],
    [{ AUTHORIZATION: 'BEARER   sk-three  ' }, 'sk-three'],
    [{ 'x-api-key': 'sk-four' }, 'sk-four'],
    [{ 'X-Api-Key': ' sk-five ' }, 'sk-five'],
    // Not a bearer token: the x-api-key header is the key.
    [{ authorization: 'Basic Zm9vOmJhcg==', 'x-api-key': 'sk-six' }, 'sk-six'],
  ])('%j gives the usage plan key %s', async (headers, key) => {
    const result = await handler(event(headers));
    expect(result.usageIdentifierKey).toBe(key);
    expect(result.policyDocument.Statement).toEqual([
      { Action: 'execute-api:Invoke', Effect: 'Allow', Resource: METHOD_ARN },
    ]);
    // The key is the credential: it is not the principal, which lands in logs.
    expect(result.principalId).not.toContain(key);
  });

  it.each([[{}], [{ authorization: 'Basic Zm9vOmJhcg==' }], [{ authorization: 'Bearer' }], [{ 'x-api-key': '  ' }]])(
    '%j is Unauthorized',
    async (headers) => {
      await expect(handler(event(headers))).rejects.toThrow(new RegExp(`^${UNAUTHORIZED}$`));
    },
  );
});
