/** Reads a request trace from disk and parses it with the pure parsers in lib/core/sim/traces. */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseTrace, type ParsedTrace, type ParseOptions } from '../core/sim/traces';

export async function loadTraceFile(path: string | URL, opts: ParseOptions = {}): Promise<ParsedTrace> {
  const text = await readFile(path, 'utf8');
  const name = typeof path === 'string' ? path : basename(path.pathname);
  return parseTrace(text, name, opts);
}
