import { createContextKey, createContextValues, type ContextValues } from '@connectrpc/connect';

/**
 * The network address of the peer that opened the connection (the socket's remote address,
 * without port). Empty when unknown. Handlers read it the same way on gRPC, Connect, gRPC-Web
 * and REST; resolving `X-Forwarded-For` from trusted proxies is up to the handler.
 */
export const clientAddressKey = createContextKey<string>('', {
  description: 'network address of the connection peer',
});

/** The part of a Node HTTP/1.1 or HTTP/2 request this module reads. */
export interface RawRequestWithSocket {
  socket?: { remoteAddress?: string } | null;
}

/**
 * Creates the context values for one request from its raw Node request: sets
 * `clientAddressKey`. Pass it as the connect-fastify plugin's `contextValues`
 * (`(request) => contextValuesFor(request.raw)`); the REST transcoder calls it itself.
 */
export function contextValuesFor(
  rawRequest: RawRequestWithSocket,
  values: ContextValues = createContextValues(),
): ContextValues {
  const address = rawRequest.socket?.remoteAddress;
  if (address !== undefined) values.set(clientAddressKey, address);
  return values;
}
