/**
 * AWS-protocol servers on 127.0.0.1, each on a port of its own: dynalite (DynamoDB), fauxqs (SQS and S3 on
 * one port) and Debian's redis-server speaking TLS only, with a throwaway certificate made for this run (the
 * ElastiCache Serverless path: `rediss://`, TLS always on). All bind 127.0.0.1; nothing here touches 127.0.0.1:6379.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dynalite from 'dynalite';
import { buildApp } from 'fauxqs';

export interface AwsServers {
  /** fauxqs: SQS and S3. */
  readonly sqsS3Endpoint: string;
  /** dynalite. */
  readonly dynamodbEndpoint: string;
  /** TLS-only redis-server. */
  readonly redisHost: string;
  readonly redisTlsPort: number;
  /** The certificate authority a client must trust to reach the TLS Redis (NODE_EXTRA_CA_CERTS). */
  readonly caFile: string;
  stop(): Promise<void>;
}

/** A port nothing listens on now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startAwsServers(): Promise<AwsServers> {
  const dir = mkdtempSync(join(tmpdir(), 'disagg-aws-tier-'));
  const stops: (() => Promise<void>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    // fauxqs's own startFauxqs listens on 0.0.0.0; its app is bound to loopback here instead.
    const fauxqs = buildApp({ logger: false });
    const fauxqsAddress = await fauxqs.listen({ port: 0, host: '127.0.0.1' });
    stops.push(() => fauxqs.close());

    const dynamo = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve) => dynamo.listen(0, '127.0.0.1', () => resolve()));
    stops.push(() => new Promise<void>((resolve) => dynamo.close(() => resolve())));
    const dynamoPort = (dynamo.address() as { port: number }).port;

    const { caFile, certFile, keyFile } = makeCertificate(dir);
    const redisTlsPort = await freePort();
    const redis = startTlsRedis(redisTlsPort, { caFile, certFile, keyFile });
    stops.push(() => stopChild(redis));
    await waitForPort(redisTlsPort, redis);

    return {
      sqsS3Endpoint: fauxqsAddress,
      dynamodbEndpoint: `http://127.0.0.1:${dynamoPort}`,
      redisHost: '127.0.0.1',
      redisTlsPort,
      caFile,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A self-signed CA and a server certificate for 127.0.0.1, valid one day, made with the openssl CLI. */
function makeCertificate(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const caFile = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  const keyFile = join(dir, 'server-key.pem');
  const csr = join(dir, 'server.csr');
  const certFile = join(dir, 'server.pem');
  const ext = join(dir, 'server.ext');
  const openssl = (args: string[]): void => {
    const out = spawnSync('openssl', args, { encoding: 'utf8' });
    if (out.error || out.status !== 0) {
      throw new Error(`openssl ${args[0]} failed (install Debian's openssl): ${out.error?.message ?? out.stderr}`);
    }
  };
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    caKey,
    '-out',
    caFile,
    '-days',
    '1',
    '-subj',
    '/CN=disagg test CA',
  ]);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', '/CN=127.0.0.1']);
  spawnSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > "${ext}"`]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    caFile,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-out',
    certFile,
    '-days',
    '1',
    '-extfile',
    ext,
  ]);
  return { caFile, certFile, keyFile };
}

function startTlsRedis(port: number, tls: { caFile: string; certFile: string; keyFile: string }): ChildProcess {
  const child = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--tls-cert-file',
      tls.certFile,
      '--tls-key-file',
      tls.keyFile,
      '--tls-ca-cert-file',
      tls.caFile,
      '--tls-auth-clients',
      'no',
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.on('error', () => undefined);
  return child;
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(
        `redis-server exited with ${child.exitCode} (is Debian's redis-server, built with TLS, installed?)`,
      );
    const open = await new Promise<boolean>((resolve) => {
      const socket = connectTcp(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server did not listen on 127.0.0.1:${port} within 10 s`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 2000).unref();
  });
}
