import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';

import { createDualProtocolServer } from './listen.ts';

describe('dual protocol listener', () => {
  test('serves both protocols and closes with idle connections', async () => {
    const server = createDualProtocolServer((request, response) => {
      response.setHeader('content-type', 'text/plain');
      response.end(`HTTP/${request.httpVersion}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;

    const agent = new http.Agent({ keepAlive: true });
    const http1Body = await new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/', agent }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve(text));
      }).on('error', reject);
    });
    expect(http1Body).toBe('HTTP/1.1');

    const session = http2.connect(`http://127.0.0.1:${port}`);
    const http2Body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/' });
      let text = '';
      stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
    });
    expect(http2Body).toBe('HTTP/2.0');

    // A connection that has sent nothing yet must not hold the server open either.
    const silent = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => silent.once('connect', resolve));

    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await closed;
    expect(server.listening).toBe(false);
    session.destroy();
    agent.destroy();
    silent.destroy();
  });
});
