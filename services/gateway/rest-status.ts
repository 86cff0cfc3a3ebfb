import { create, fromBinary, toJson, type DescMessage, type JsonObject, type Registry } from '@bufbuild/protobuf';
import { base64Encode } from '@bufbuild/protobuf/wire';
import { Code, type ConnectError } from '@connectrpc/connect';

/**
 * Maps a gRPC status code to the HTTP status a REST client gets, as Envoy's
 * grpc_json_transcoder and grpc-gateway map them (google/rpc/code.proto lists the pairs).
 */
export function httpStatusFromCode(code: Code): number {
  switch (code) {
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
      return 400;
    case Code.Unauthenticated:
      return 401;
    case Code.PermissionDenied:
      return 403;
    case Code.NotFound:
      return 404;
    case Code.AlreadyExists:
    case Code.Aborted:
      return 409;
    case Code.ResourceExhausted:
      return 429;
    case Code.Canceled:
      return 499;
    case Code.Unimplemented:
      return 501;
    case Code.Unavailable:
      return 503;
    case Code.DeadlineExceeded:
      return 504;
    case Code.Unknown:
    case Code.Internal:
    case Code.DataLoss:
      return 500;
  }
}

/**
 * Renders an error as the protobuf JSON of `google.rpc.Status`: numeric `code`, `message`,
 * and `details` as `Any` objects. Details whose type `registry` does not contain keep their
 * bytes, base64-encoded, under `value`.
 */
export function statusJsonFromError(error: ConnectError, registry: Registry): JsonObject {
  const details: JsonObject[] = [];
  for (const detail of error.details) {
    const typeName = 'desc' in detail ? detail.desc.typeName : detail.type;
    const typeUrl = `type.googleapis.com/${typeName}`;
    let desc: DescMessage | undefined;
    let message;
    if ('desc' in detail) {
      desc = detail.desc;
      message = create(detail.desc, detail.value);
    } else {
      desc = registry.getMessage(typeName);
      message = desc === undefined ? undefined : fromBinary(desc, detail.value);
    }
    if (desc === undefined || message === undefined) {
      const bytes = 'desc' in detail ? new Uint8Array() : detail.value;
      details.push({ '@type': typeUrl, value: base64Encode(bytes) });
      continue;
    }
    const json = toJson(desc, message as never, { registry });
    const isObject = typeof json === 'object' && json !== null && !Array.isArray(json);
    details.push(isObject ? { '@type': typeUrl, ...json } : { '@type': typeUrl, value: json });
  }
  return { code: error.code, message: error.rawMessage, details };
}
