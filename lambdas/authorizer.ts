/**
 * API Gateway's request authorizer for the deployed API: it finds the API key where OpenAI clients put it
 * (`Authorization: Bearer <key>`, the scheme in any case) or where API Gateway's own clients do (`x-api-key`), and
 * hands it back as the usage identifier key. API Gateway (API key source AUTHORIZER) then checks that key against
 * the usage plan exactly as it checks an `x-api-key` header, throttling included: this function decides nothing
 * about whether a key is valid, it only reads it. No key: "Unauthorized", which API Gateway answers with 401.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { presentedKey } from '../lib/core/api/http-edge';

/** The message API Gateway maps to its UNAUTHORIZED (401) gateway response. */
export const UNAUTHORIZED = 'Unauthorized';

/** A header by name in any case (API Gateway passes the client's spelling). */
function header(headers: APIGatewayRequestAuthorizerEvent['headers'], name: string): string | undefined {
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (key.toLowerCase() === name && value !== undefined) return value;
  }
  return undefined;
}

export async function handler(event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  const key = presentedKey(header(event.headers, 'authorization'), header(event.headers, 'x-api-key'));
  if (key === null || key === '') throw new Error(UNAUTHORIZED);
  return {
    // Not an identity: the key is the caller's only credential, and it is not logged or echoed here.
    principalId: 'api-key',
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }],
    },
    usageIdentifierKey: key,
  };
}
