/**
 * Builds the stack the way bin/app.ts does, from context, with bundling skipped (the
 * `aws:cdk:bundling-stacks` context) so a synth takes a second, not a bundle per function.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, vi } from 'vitest';
import { readConfig } from '../../lib/infra/config';
import { DisaggStack, stackName } from '../../lib/infra/stack';

export type Context = Readonly<Record<string, unknown>>;

export interface Synthesized {
  readonly app: App;
  readonly stack: DisaggStack;
  readonly template: Template;
}

// A synth takes a few seconds on a loaded machine; the project default (30 s) is meant for unit tests.
vi.setConfig({ testTimeout: 120_000 });

const cache = new Map<string, Synthesized>();

// Every app of this test file synthesizes under one temp folder, removed afterwards: left to CDK's
// default, each synth leaves a cdk.out folder (megabytes with bundles) in the system temp dir.
const outRoot = mkdtempSync(join(tmpdir(), 'disagg-cdk-test-'));
let apps = 0;
afterAll(() => rmSync(outRoot, { recursive: true, force: true }));

/** A fresh app and stack for these context values (memoised: tests only read the result). */
export function synth(context: Context = {}, options: { bundle?: boolean } = {}): Synthesized {
  const key = JSON.stringify({ context, bundle: options.bundle ?? false });
  const hit = cache.get(key);
  if (hit) return hit;
  const app = new App({
    outdir: join(outRoot, String((apps += 1))),
    context: { ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }), ...context },
  });
  const config = readConfig((k) => app.node.tryGetContext(k));
  const stack = new DisaggStack(app, stackName(config), { config });
  const result = { app, stack, template: Template.fromStack(stack) };
  cache.set(key, result);
  return result;
}

export const AWS: Context = { profile: 'aws' };
export const LOCALSTACK: Context = { profile: 'localstack' };

/** Resources of one type in a template, by logical id. */
export function resourcesOf(
  template: Template,
  type: string,
): Record<string, { Properties?: Record<string, unknown> }> {
  return template.findResources(type) as Record<string, { Properties?: Record<string, unknown> }>;
}

/** The one function whose handler and description match; fails loudly when there is not exactly one. */
export function functionProps(template: Template, descriptionStart: string): Record<string, unknown> {
  const matches = Object.values(resourcesOf(template, 'AWS::Lambda::Function')).filter((r) =>
    String(r.Properties?.Description ?? '').startsWith(descriptionStart),
  );
  if (matches.length !== 1) throw new Error(`expected one function "${descriptionStart}…", found ${matches.length}`);
  return matches[0]!.Properties!;
}

/** Logical id of the one function whose description starts with this text. */
export function functionLogicalId(template: Template, descriptionStart: string): string {
  const entries = Object.entries(resourcesOf(template, 'AWS::Lambda::Function')).filter(([, r]) =>
    String(r.Properties?.Description ?? '').startsWith(descriptionStart),
  );
  if (entries.length !== 1) throw new Error(`expected one function "${descriptionStart}…", found ${entries.length}`);
  return entries[0]![0];
}

export const DESCRIPTIONS = {
  api: 'Disagg API: ',
  apiStream: 'Disagg API, streaming',
  prefill: 'Disagg prefill stage',
  prefillFailures: 'Disagg prefill failures',
  decode: 'Disagg decode stage',
} as const;

/** The deployed API's key reader: no pipeline, no deployment environment. */
export const AUTHORIZER_DESCRIPTION = 'Disagg API key reader';
