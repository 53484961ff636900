import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type AddressInfo, connect } from 'node:net';
import path from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';

/**
 * An https:// front of `target` (TLS ended here, the bytes passed on), with a certificate for
 * `name` made for the test; its file is what the server trusts (NODE_EXTRA_CA_CERTS).
 */
export async function startTlsFront(name: string, target: string, directory: string) {
  const key = path.join(directory, 'key.pem');
  const certificate = path.join(directory, 'cert.pem');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', key, '-out', certificate],
      ...['-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`],
    ],
    { stdio: 'ignore' },
  );
  const { port } = new URL(target);
  const server: TlsServer = createTlsServer({ key: readFileSync(key), cert: readFileSync(certificate) }, (socket) => {
    const upstream = connect(Number(port), '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, certificate };
}
