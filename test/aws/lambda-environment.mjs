/**
 * One Lambda execution environment, as a child process: the function's environment variables are this
 * process's, its code (a cdk.out bundle, or the TypeScript source under tsx) is loaded once at start (the init
 * phase of a cold start) and kept for the next invocations, and each invocation arrives over IPC.
 * lambda-local supplies the context (getRemainingTimeInMillis from the function's timeout) and the
 * `awslambda.streamifyResponse` / `HttpResponseStream` globals of Lambda's Node.js runtime, so a streaming
 * handler writes its prelude and chunks, which go back to the parent as they are written. The parent enforces
 * the timeout by ending this process, as Lambda ends a sandbox whose invocation timed out.
 */
import lambdaLocal from 'lambda-local';

const code = process.env.DISAGG_TIER_CODE;
const exportName = process.env.DISAGG_TIER_HANDLER;
const timeoutMs = Number(process.env.DISAGG_TIER_TIMEOUT_MS);

const send = (message) => process.send?.(message);

/** Lambda's error shape for an invocation that threw. */
function functionError(err) {
  return {
    errorType: err instanceof Error ? err.name : 'Error',
    errorMessage: err instanceof Error ? err.message : String(err),
  };
}

process.on('message', (message) => {
  if (message?.type !== 'invoke') return;
  const { id, event } = message;
  let streamed = false;
  lambdaLocal
    .execute({
      event,
      lambdaPath: code,
      lambdaHandler: exportName,
      esm: true,
      timeoutMs,
      // -1: only the function's own output (its log lines), none of lambda-local's.
      verboseLevel: -1,
      onInvocationEnd: (err) => {
        if (streamed) send({ type: 'done', id, ...(err ? { error: functionError(err) } : {}) });
      },
    })
    .then(
      (result) => {
        const body = result && typeof result === 'object' ? result.body : undefined;
        if (body && typeof body.on === 'function') {
          // A streamed response: the prelude, then each chunk as the handler writes it.
          streamed = true;
          send({ type: 'head', id, statusCode: result.statusCode, headers: result.headers ?? {} });
          body.on('data', (chunk) => send({ type: 'chunk', id, data: chunk.toString('utf8'), at: Date.now() }));
          body.on('end', () => send({ type: 'end', id }));
          return;
        }
        send({ type: 'result', id, payload: result === undefined ? null : result });
      },
      (err) => send({ type: 'result', id, error: functionError(err) }),
    );
});

// The init phase: the module is loaded (and its top-level code run) before the first invocation, outside the
// invocation's timeout, as Lambda's init phase is; lambda-local's own import of the same path finds it cached.
await import(code);
send({ type: 'ready' });
