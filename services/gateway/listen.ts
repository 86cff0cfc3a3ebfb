import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';

import type { FastifyServerFactory } from 'fastify';

/**
 * The first bytes an HTTP/2 client sends on a cleartext connection with prior knowledge
 * (RFC 9113, section 3.4). No HTTP/1.1 request line starts with them.
 */
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** A request handler that both the HTTP/1.1 and the HTTP/2 compatibility API can call. */
export type DualProtocolHandler = (
  request: http.IncomingMessage | http2.Http2ServerRequest,
  response: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/**
 * A `net.Server` that serves HTTP/1.1 and cleartext HTTP/2 on the same port, with the close
 * methods Fastify calls on a `serverFactory` server.
 */
export interface DualProtocolServer extends net.Server {
  /** Closes HTTP/1.1 keep-alive connections that carry no request and idle HTTP/2 sessions. */
  closeIdleConnections(): void;
  /** Destroys every HTTP/1.1 connection and every HTTP/2 session, in flight or not. */
  closeAllConnections(): void;
  /** Sends GOAWAY on every HTTP/2 session; each closes once its open streams end. */
  closeHttp2Sessions(): void;
}

/**
 * Creates one TCP server for HTTP/1.1 and h2c (HTTP/2 over cleartext with prior knowledge, as
 * grpcurl, `buf curl` and gRPC clients speak it). Each connection is routed by its first bytes:
 * the HTTP/2 connection preface goes to an HTTP/2 server, anything else to an HTTP/1.1 server,
 * and both call `handler`. Use it as Fastify's `serverFactory`.
 *
 * `close()` stops accepting connections, closes idle HTTP/1.1 connections, sends GOAWAY to
 * every HTTP/2 session and calls back once every connection has ended. HTTP/1.1 upgrade to h2c
 * (`Upgrade: h2c`) is not supported; clients must use prior knowledge.
 */
export function createDualProtocolServer(handler: DualProtocolHandler): DualProtocolServer {
  const http1 = http.createServer(handler as http.RequestListener);
  // The HTTP/1.1 server never listens itself, so Node does not track its connections and its
  // closeIdleConnections() finds none. These sets track them instead.
  // NOTE: for the same reason Node does not enforce `headersTimeout` and `requestTimeout` on
  // these connections. Put a proxy with its own timeouts in front when clients are untrusted.
  const http1Sockets = new Set<net.Socket>();
  const undecidedSockets = new Set<net.Socket>();
  const pendingResponses = new Set<http.ServerResponse>();
  const h2c = http2.createServer(handler as (
    request: http2.Http2ServerRequest,
    response: http2.Http2ServerResponse,
  ) => void);
  let closing = false;
  const sessions = new Set<http2.Http2Session>();
  const busyStreams = new Map<http2.Http2Session, number>();

  h2c.on('session', (session) => {
    if (closing) session.close();
    sessions.add(session);
    busyStreams.set(session, 0);
    session.on('close', () => {
      sessions.delete(session);
      busyStreams.delete(session);
    });
  });
  h2c.on('stream', (stream) => {
    const session = stream.session;
    if (session === undefined) return;
    busyStreams.set(session, (busyStreams.get(session) ?? 0) + 1);
    stream.on('close', () => {
      busyStreams.set(session, Math.max(0, (busyStreams.get(session) ?? 1) - 1));
    });
  });

  const server = net.createServer((socket) => {
    undecidedSockets.add(socket);
    socket.on('close', () => undecidedSockets.delete(socket));
    routeConnection(socket, (isHttp2) => {
      undecidedSockets.delete(socket);
      if (isHttp2) {
        h2c.emit('connection', socket);
        return;
      }
      http1Sockets.add(socket);
      socket.on('close', () => http1Sockets.delete(socket));
      http1.emit('connection', socket);
    });
  });

  http1.on('request', (_request: http.IncomingMessage, response: http.ServerResponse) => {
    if (closing) response.setHeader('Connection', 'close');
    pendingResponses.add(response);
    response.on('close', () => pendingResponses.delete(response));
  });

  // Fastify listens for `clientError` on its server to reply to malformed HTTP/1.1 requests.
  http1.on('clientError', (error, socket) => {
    if (server.listenerCount('clientError') > 0) {
      server.emit('clientError', error, socket);
    } else {
      socket.destroy(error);
    }
  });

  const closeIdleConnections = (): void => {
    for (const socket of undecidedSockets) socket.destroy();
    const busySockets = new Set<unknown>();
    for (const response of pendingResponses) busySockets.add(response.socket);
    for (const socket of http1Sockets) {
      if (!busySockets.has(socket)) socket.destroy();
    }
    for (const session of sessions) {
      if (busyStreams.get(session) === 0) session.close();
    }
  };
  const closeHttp2Sessions = (): void => {
    for (const session of sessions) session.close();
  };
  const closeAllConnections = (): void => {
    for (const socket of undecidedSockets) socket.destroy();
    for (const socket of http1Sockets) socket.destroy();
    for (const session of sessions) session.destroy();
  };

  const close = server.close.bind(server);
  return Object.assign(server, {
    closeIdleConnections,
    closeAllConnections,
    closeHttp2Sessions,
    close(callback?: (error?: Error) => void) {
      closing = true;
      close(callback);
      // A keep-alive connection with a request in flight ends once its response is sent.
      for (const response of pendingResponses) {
        if (!response.headersSent) {
          response.setHeader('Connection', 'close');
        } else {
          response.on('finish', () => response.socket?.end());
        }
      }
      closeIdleConnections();
      closeHttp2Sessions();
      return server;
    },
  });
}

/**
 * Fastify's `serverFactory` for createDualProtocolServer, typed as an HTTP/1.1 server so the
 * Fastify instance and plugins keep their default types. Requests over HTTP/2 reach handlers
 * as `Http2ServerRequest`, whose compatibility API Fastify and connect-fastify both accept.
 */
export const dualProtocolServerFactory: FastifyServerFactory<http.Server> = (handler) =>
  createDualProtocolServer(handler as DualProtocolHandler) as unknown as http.Server;

/**
 * Reads from `socket` until its first bytes show whether it starts with the HTTP/2 preface,
 * then puts the bytes back and calls `serve` with the result.
 */
function routeConnection(socket: net.Socket, serve: (isHttp2: boolean) => void): void {
  let received = Buffer.alloc(0);

  const onData = (chunk: Buffer): void => {
    received = Buffer.concat([received, chunk]);
    const compared = Math.min(received.length, HTTP2_PREFACE.length);
    const matchesSoFar = received.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
    if (matchesSoFar && compared < HTTP2_PREFACE.length) return;

    socket.off('data', onData);
    socket.off('error', onEarlyError);
    socket.pause();
    socket.unshift(received);
    // The HTTP/2 session reads the bytes put back from the socket's buffer when it starts. The
    // HTTP/1.1 parser reads new bytes straight from the socket handle, and the bytes put back
    // reach it only as a `data` event once the socket flows again.
    serve(matchesSoFar);
    if (!matchesSoFar) socket.resume();
  };
  const onEarlyError = (): void => {
    socket.destroy();
  };

  socket.on('data', onData);
  socket.on('error', onEarlyError);
}
