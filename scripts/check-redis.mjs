#!/usr/bin/env node
// Before `npm test`: the integration tests need Redis at REDIS_URL (default redis://127.0.0.1:6379). One PING up
// front, so a missing Redis is one clear line saying how to start it, not dozens of failed tests.
import net from 'node:net';
import tls from 'node:tls';

const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const port = Number(url.port || 6379);
const host = url.hostname || '127.0.0.1';
const command = (...args) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

function ping() {
  return new Promise((resolve) => {
    const socket =
      url.protocol === 'rediss:' ? tls.connect({ host, port, servername: host }) : net.connect({ host, port });
    const done = (ok, why) => {
      socket.destroy();
      resolve({ ok, why });
    };
    socket.setTimeout(2000, () => done(false, 'no answer within 2 s'));
    socket.once('error', (err) => done(false, err.code ?? err.message));
    socket.once(url.protocol === 'rediss:' ? 'secureConnect' : 'connect', () => {
      const password = decodeURIComponent(url.password);
      const user = decodeURIComponent(url.username);
      if (password) socket.write(user ? command('AUTH', user, password) : command('AUTH', password));
      socket.write(command('PING'));
    });
    let reply = '';
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('+PONG')) done(true);
      else if (reply.startsWith('-')) done(false, reply.split('\r\n')[0].slice(1));
    });
  });
}

const { ok, why } = await ping();
if (!ok) {
  const shown = `${url.protocol}//${host}:${port}`;
  process.stderr.write(
    `npm test: Redis does not answer at ${shown} (${why}). The integration tests need it.\n` +
      `  Start one:  redis-server --daemonize yes --bind 127.0.0.1 --port ${port} --save '' --appendonly no\n` +
      `  (Debian/Ubuntu: apt-get install redis-server), or point REDIS_URL at one.\n` +
      `  Tests that need no Redis: npm run test:unit\n`,
  );
  process.exit(1);
}
