/**
 * End to end in a real AWS sandbox account (`npm run sandbox:e2e`): deploys the aws profile with its defaults
 * into the account and region of the caller's credentials, runs the smoke check against it, streams a request
 * past 30 s (the buffered API's limit; REST response streaming allows 15 minutes), destroys the stack, and prints
 * what it verified. It creates billable resources for the minutes it runs (README, "Deploying to an AWS sandbox
 * account"), so it asks before deploying unless given --yes; it is not part of CI, which has no AWS account.
 * Needs AWS credentials for the target account and the AWS CLI (to read the API key's value).
 *
 *   npm run sandbox:e2e [-- --yes] [--keep] [-c key=value ...]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { plainTable } from '../bin/commands/table';

/** Longer than the buffered API's 29 s integration limit: only response streaming can deliver it. */
const LONG_STREAM_MIN_SECONDS = 30;
const STACK = 'Disagg-aws';

interface Check {
  readonly check: string;
  readonly ok: boolean;
  readonly detail: string;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      yes: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      context: { type: 'string', short: 'c', multiple: true, default: [] },
    },
    strict: true,
  });
  const context = (values.context ?? []).flatMap((kv) => ['-c', kv]);
  if (!values.yes) {
    if (!process.stdin.isTTY) {
      console.error(
        'sandbox:e2e deploys billable resources into your AWS account; pass --yes to run it without a terminal.',
      );
      return 2;
    }
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question(
      `Deploy ${STACK} into the account of your AWS credentials, test it, then destroy it? [y/N] `,
    );
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) return 2;
  }

  const checks: Check[] = [];
  const outDir = mkdtempSync(join(tmpdir(), 'disagg-sandbox-e2e-'));
  const outputsFile = join(outDir, 'outputs.json');
  try {
    const deploy = run('npx', [
      'cdk',
      'deploy',
      STACK,
      '-c',
      'profile=aws',
      ...context,
      '--require-approval',
      'never',
      '--outputs-file',
      outputsFile,
    ]);
    checks.push({
      check: 'cdk deploy (defaults, fresh account)',
      ok: deploy.ok,
      detail: deploy.ok ? `${deploy.seconds} s` : deploy.tail,
    });
    if (!deploy.ok) return report(checks);

    const outputs =
      (JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, string>>)[STACK] ?? {};
    const baseUrl = outputs.OpenAiBaseUrl!;
    const apiKey = outputs.ApiKeyId ? apiKeyValue(outputs.ApiKeyId) : '';

    const smoke = run(
      'npm',
      ['run', '--silent', 'smoke', '--', '--url', baseUrl, ...(apiKey ? ['--api-key', apiKey] : [])],
      true,
    );
    checks.push({ check: 'smoke check (npm run smoke)', ok: smoke.ok, detail: smoke.tail });

    checks.push(await longStream(baseUrl, apiKey));
  } finally {
    if (values.keep) {
      checks.push({
        check: 'cdk destroy',
        ok: true,
        detail: 'skipped (--keep): run `npx cdk destroy -c profile=aws` yourself',
      });
    } else {
      const destroy = run('npx', ['cdk', 'destroy', STACK, '-c', 'profile=aws', ...context, '--force']);
      checks.push({ check: 'cdk destroy', ok: destroy.ok, detail: destroy.ok ? `${destroy.seconds} s` : destroy.tail });
    }
    rmSync(outDir, { recursive: true, force: true });
  }
  return report(checks);
}

/** A colocated request of 4,096 greedy tokens: about 50 s of emulated H100 decode at timeScale 1, streamed. */
async function longStream(baseUrl: string, apiKey: string): Promise<Check> {
  const started = Date.now();
  try {
    const res = await fetch(`${baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(apiKey ? { 'x-api-key': apiKey } : {}) },
      body: JSON.stringify({
        model: 'llama-3.3-70b',
        stream: true,
        max_tokens: 4096,
        temperature: 0,
        messages: [{ role: 'user', content: 'Stream for a while.' }],
        disagg: { mode: 'colocated' },
      }),
      signal: AbortSignal.timeout(300_000),
    });
    if (res.status !== 200 || !res.body) return { check: 'stream past 30 s', ok: false, detail: `HTTP ${res.status}` };
    let text = '';
    let firstChunkS = -1;
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      if (firstChunkS < 0) firstChunkS = (Date.now() - started) / 1000;
      text += decoder.decode(chunk as Uint8Array, { stream: true });
    }
    const seconds = (Date.now() - started) / 1000;
    const done = text.trimEnd().endsWith('data: [DONE]');
    const failed = /"error"/.test(
      text
        .split('\n')
        .filter((l) => l.startsWith('data: {"error"'))
        .join(''),
    );
    const ok = done && !failed && seconds > LONG_STREAM_MIN_SECONDS && firstChunkS < LONG_STREAM_MIN_SECONDS;
    return {
      check: 'stream past 30 s (response streaming)',
      ok,
      detail: `first chunk at ${firstChunkS.toFixed(1)} s, [DONE] ${done ? 'at' : 'missing after'} ${seconds.toFixed(1)} s${failed ? ', in-band error' : ''}`,
    };
  } catch (err) {
    return { check: 'stream past 30 s (response streaming)', ok: false, detail: (err as Error).message };
  }
}

/** The key's value, read with the AWS CLI as the README shows (the stack outputs only its id). */
function apiKeyValue(id: string): string {
  const out = spawnSync(
    'aws',
    ['apigateway', 'get-api-key', '--api-key', id, '--include-value', '--query', 'value', '--output', 'text'],
    {
      encoding: 'utf8',
    },
  );
  if (out.error || out.status !== 0) {
    throw new Error(
      `could not read the API key's value with the AWS CLI (aws apigateway get-api-key): ${out.error?.message ?? out.stderr}`,
    );
  }
  return out.stdout.trim();
}

function run(command: string, args: string[], quiet = false): { ok: boolean; seconds: number; tail: string } {
  const started = Date.now();
  const out = spawnSync(command, args, { encoding: 'utf8', stdio: quiet ? 'pipe' : ['ignore', 'inherit', 'pipe'] });
  const text = `${out.stdout ?? ''}${out.stderr ?? ''}`.trim();
  if (!quiet && out.stderr) process.stderr.write(out.stderr);
  return {
    ok: out.status === 0,
    seconds: Math.round((Date.now() - started) / 1000),
    tail: text.split('\n').slice(-3).join(' | ') || `exit ${out.status}`,
  };
}

function report(checks: readonly Check[]): number {
  console.log(`\nsandbox:e2e against ${STACK}:`);
  const table = plainTable(['check', 'result', 'detail']);
  for (const c of checks) table.push([c.check, c.ok ? 'pass' : 'FAIL', c.detail]);
  console.log(table.toString());
  return checks.every((c) => c.ok) ? 0 : 1;
}

process.exitCode = await main();
