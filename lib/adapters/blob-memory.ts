/**
 * Memory for a KV blob the encoder fills completely (lib/core/handoff/kv-blob.ts, KvBlobWriteOptions.allocate):
 * Node's Buffer.allocUnsafeSlow, which neither zero-fills it (a megabyte per request for a 1,000-token blob)
 * nor takes it from the shared pool, viewed as a plain Uint8Array so callers keep Uint8Array semantics.
 */
export function uninitializedBytes(byteLength: number): Uint8Array {
  const buffer = Buffer.allocUnsafeSlow(byteLength);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
