/**
 * A Bedrock runtime on 127.0.0.1 that speaks the Converse API's wire format over HTTP/2 (cleartext, as the SDK's
 * HTTP/2 handler for this service connects to an http:// endpoint): `POST /model/{id}/converse` answers
 * JSON and `POST /model/{id}/converse-stream` answers an `application/vnd.amazon.eventstream` body framed by the
 * SDK's own codec, so the real @aws-sdk/client-bedrock-runtime serialises, signs, sends and parses every call.
 * What the model "says" is scripted per request; every request body is kept for the test to inspect.
 */
import { createServer, type Http2ServerRequest, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { EventStreamCodec } from '@smithy/core/event-streams';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';

/** One content block of the scripted answer. */
export type FakeBlock =
  | { readonly text: string }
  | { readonly toolUse: { readonly toolUseId: string; readonly name: string; readonly input: object } };

export interface FakeAnswer {
  readonly blocks: readonly FakeBlock[];
  readonly stopReason: 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence';
}

export interface ConverseCall {
  readonly api: 'converse' | 'converse-stream';
  readonly modelId: string;
  readonly body: {
    messages: { role: string; content: Record<string, unknown>[] }[];
    system?: { text: string }[];
    toolConfig?: { tools: { toolSpec: { name: string } }[]; toolChoice?: Record<string, unknown> };
    inferenceConfig?: Record<string, unknown>;
  };
}

export interface FakeBedrock {
  readonly url: string;
  readonly calls: ConverseCall[];
  /** A client of the real SDK pointed at this server. */
  client(): BedrockRuntimeClient;
  /** Refuse ConverseStream as Bedrock does for models that cannot stream tool use. */
  refuseStreamingTools: boolean;
  close(): Promise<void>;
}

const codec = new EventStreamCodec(
  (bytes) => new TextDecoder().decode(bytes),
  (text) => new TextEncoder().encode(text),
);

function frame(eventType: string, payload: object): Uint8Array {
  return codec.encode({
    headers: {
      ':event-type': { type: 'string', value: eventType },
      ':message-type': { type: 'string', value: 'event' },
      ':content-type': { type: 'string', value: 'application/json' },
    },
    body: new TextEncoder().encode(JSON.stringify(payload)),
  });
}

/** The event sequence ConverseStream sends for an answer: tool input arrives as JSON text in pieces. */
function streamEvents(answer: FakeAnswer): Uint8Array[] {
  const events = [frame('messageStart', { role: 'assistant' })];
  answer.blocks.forEach((block, contentBlockIndex) => {
    if ('text' in block) {
      for (const word of block.text.split(/(?<= )/)) {
        events.push(frame('contentBlockDelta', { contentBlockIndex, delta: { text: word } }));
      }
    } else {
      const { toolUseId, name, input } = block.toolUse;
      events.push(frame('contentBlockStart', { contentBlockIndex, start: { toolUse: { toolUseId, name } } }));
      const json = JSON.stringify(input);
      const half = Math.ceil(json.length / 2);
      for (const part of [json.slice(0, half), json.slice(half)]) {
        events.push(frame('contentBlockDelta', { contentBlockIndex, delta: { toolUse: { input: part } } }));
      }
    }
    events.push(frame('contentBlockStop', { contentBlockIndex }));
  });
  events.push(frame('messageStop', { stopReason: answer.stopReason }));
  events.push(
    frame('metadata', { usage: { inputTokens: 42, outputTokens: 7, totalTokens: 49 }, metrics: { latencyMs: 5 } }),
  );
  return events;
}

async function readBody(req: Http2ServerRequest): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeBedrock(script: (call: ConverseCall) => FakeAnswer): Promise<FakeBedrock> {
  const calls: ConverseCall[] = [];
  const state = { refuseStreamingTools: false };
  const sessions = new Set<Http2Session>();
  const server = createServer((req, res) => {
    void (async () => {
      const match = /^\/model\/([^/]+)\/(converse|converse-stream)$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !match) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
        return;
      }
      const call: ConverseCall = {
        api: match[2] as ConverseCall['api'],
        modelId: decodeURIComponent(match[1]!),
        body: JSON.parse(await readBody(req)) as ConverseCall['body'],
      };
      calls.push(call);
      if (call.api === 'converse-stream' && state.refuseStreamingTools && call.body.toolConfig) {
        res.writeHead(400, { 'content-type': 'application/json', 'x-amzn-errortype': 'ValidationException' });
        res.end(JSON.stringify({ message: "This model doesn't support tool use in streaming mode." }));
        return;
      }
      const answer = script(call);
      if (call.api === 'converse') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            output: { message: { role: 'assistant', content: answer.blocks } },
            stopReason: answer.stopReason,
            usage: { inputTokens: 42, outputTokens: 7, totalTokens: 49 },
            metrics: { latencyMs: 5 },
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
      for (const event of streamEvents(answer)) res.write(event);
      res.end();
    })().catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ message: String(err) }));
    });
  });
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    calls,
    get refuseStreamingTools() {
      return state.refuseStreamingTools;
    },
    set refuseStreamingTools(value: boolean) {
      state.refuseStreamingTools = value;
    },
    client: () =>
      new BedrockRuntimeClient({
        region: 'us-east-1',
        endpoint: url,
        credentials: { accessKeyId: 'AKIAFAKEBEDROCK', secretAccessKey: 'fake-secret' },
        maxAttempts: 1,
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}
