import { toBinary, type DescFile, type DescMessage, type DescEnum } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { Code, type ConnectRouter } from '@connectrpc/connect';

import {
  file_grpc_reflection_v1_reflection,
  ServerReflection as ServerReflectionV1,
  type ServerReflectionRequest as RequestV1,
} from '#gen/grpc/reflection/v1/reflection_pb.js';
import {
  file_grpc_reflection_v1alpha_reflection,
  ServerReflection as ServerReflectionV1alpha,
} from '#gen/grpc/reflection/v1alpha/reflection_pb.js';

/** The files reflection serves, indexed by file name, symbol and extension. */
interface ReflectionIndex {
  filesByName: Map<string, DescFile>;
  filesBySymbol: Map<string, DescFile>;
  /** Extensions by `<extendee type name>#<field number>`. */
  filesByExtension: Map<string, DescFile>;
  extensionNumbers: Map<string, number[]>;
  serviceNames: string[];
}

/**
 * The reflection request in the shape v1 and v1alpha share; v1alpha messages differ only in
 * their type name.
 */
type ReflectionRequest = Omit<RequestV1, '$typeName'>;

/**
 * Creates routes for gRPC server reflection, `grpc.reflection.v1.ServerReflection` and
 * `grpc.reflection.v1alpha.ServerReflection`, over `files` and their transitive dependencies.
 * List services returns the services of `files` and the two reflection services. Files are
 * sent with every dependency not yet sent on the same stream, as the reflection protocol specifies.
 */
export function reflectionRoutes(files: DescFile[]): (router: ConnectRouter) => void {
  const index = buildIndex([
    ...files,
    file_grpc_reflection_v1_reflection,
    file_grpc_reflection_v1alpha_reflection,
  ]);

  return (router) => {
    router.service(ServerReflectionV1, {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const request of requests) yield respond(index, request, sent);
      },
    });
    router.service(ServerReflectionV1alpha, {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const request of requests) yield respond(index, request as ReflectionRequest, sent);
      },
    });
  };
}

function buildIndex(roots: DescFile[]): ReflectionIndex {
  const index: ReflectionIndex = {
    filesByName: new Map(),
    filesBySymbol: new Map(),
    filesByExtension: new Map(),
    extensionNumbers: new Map(),
    serviceNames: [],
  };
  const visit = (file: DescFile): void => {
    if (index.filesByName.has(file.proto.name)) return;
    index.filesByName.set(file.proto.name, file);
    file.dependencies.forEach(visit);

    for (const service of file.services) {
      index.filesBySymbol.set(service.typeName, file);
      for (const method of service.methods) index.filesBySymbol.set(`${service.typeName}.${method.name}`, file);
    }
    file.messages.forEach((message) => indexMessage(index, file, message));
    file.enums.forEach((enumeration) => indexEnum(index, file, enumeration));
    for (const extension of file.extensions) indexExtension(index, file, extension);
  };
  roots.forEach(visit);

  for (const root of roots) {
    for (const service of root.services) {
      if (!index.serviceNames.includes(service.typeName)) index.serviceNames.push(service.typeName);
    }
  }
  return index;
}

function indexMessage(index: ReflectionIndex, file: DescFile, message: DescMessage): void {
  index.filesBySymbol.set(message.typeName, file);
  for (const field of message.fields) index.filesBySymbol.set(`${message.typeName}.${field.name}`, file);
  for (const oneof of message.oneofs) index.filesBySymbol.set(`${message.typeName}.${oneof.name}`, file);
  message.nestedMessages.forEach((nested) => indexMessage(index, file, nested));
  message.nestedEnums.forEach((nested) => indexEnum(index, file, nested));
  for (const extension of message.nestedExtensions) indexExtension(index, file, extension);
}

function indexEnum(index: ReflectionIndex, file: DescFile, enumeration: DescEnum): void {
  index.filesBySymbol.set(enumeration.typeName, file);
}

function indexExtension(
  index: ReflectionIndex,
  file: DescFile,
  extension: DescFile['extensions'][number],
): void {
  index.filesBySymbol.set(extension.typeName, file);
  const extendee = extension.extendee.typeName;
  index.filesByExtension.set(`${extendee}#${extension.number}`, file);
  index.extensionNumbers.set(extendee, [...(index.extensionNumbers.get(extendee) ?? []), extension.number]);
}

/** Builds the response to one reflection request, as an init object both versions accept. */
function respond(index: ReflectionIndex, request: ReflectionRequest, sent: Set<string>): never {
  const base = { validHost: request.host, originalRequest: request };
  const { messageRequest } = request;
  const notFound = (message: string) => ({
    ...base,
    messageResponse: {
      case: 'errorResponse',
      value: { errorCode: Code.NotFound, errorMessage: message },
    },
  });
  const files = (file: DescFile) => ({
    ...base,
    messageResponse: {
      case: 'fileDescriptorResponse',
      value: { fileDescriptorProto: serializeWithDependencies(file, sent) },
    },
  });

  let response;
  switch (messageRequest.case) {
    case 'listServices':
      response = {
        ...base,
        messageResponse: {
          case: 'listServicesResponse',
          value: { service: index.serviceNames.map((name) => ({ name })) },
        },
      };
      break;
    case 'fileByFilename': {
      const file = index.filesByName.get(messageRequest.value);
      response = file === undefined ? notFound(`file "${messageRequest.value}" not found`) : files(file);
      break;
    }
    case 'fileContainingSymbol': {
      const file = index.filesBySymbol.get(messageRequest.value.replace(/^\./, ''));
      response = file === undefined ? notFound(`symbol "${messageRequest.value}" not found`) : files(file);
      break;
    }
    case 'fileContainingExtension': {
      const { containingType, extensionNumber } = messageRequest.value;
      const file = index.filesByExtension.get(`${containingType}#${extensionNumber}`);
      response = file === undefined
        ? notFound(`extension ${extensionNumber} of "${containingType}" not found`)
        : files(file);
      break;
    }
    case 'allExtensionNumbersOfType': {
      const typeName = messageRequest.value;
      response = index.filesBySymbol.has(typeName)
        ? {
            ...base,
            messageResponse: {
              case: 'allExtensionNumbersResponse',
              value: { baseTypeName: typeName, extensionNumber: index.extensionNumbers.get(typeName) ?? [] },
            },
          }
        : notFound(`type "${typeName}" not found`);
      break;
    }
    case undefined:
      response = {
        ...base,
        messageResponse: {
          case: 'errorResponse',
          value: { errorCode: Code.InvalidArgument, errorMessage: 'the reflection request sets no message_request' },
        },
      };
      break;
  }
  // Both versions' generated types describe this same shape, under different type names.
  return response as never;
}

/** Serializes `file` and then each transitive dependency not yet in `sent`, adding them to it. */
function serializeWithDependencies(file: DescFile, sent: Set<string>): Uint8Array[] {
  const result: Uint8Array[] = [toBinary(FileDescriptorProtoSchema, file.proto)];
  sent.add(file.proto.name);
  const visit = (dependency: DescFile): void => {
    if (sent.has(dependency.proto.name)) return;
    sent.add(dependency.proto.name);
    result.push(toBinary(FileDescriptorProtoSchema, dependency.proto));
    dependency.dependencies.forEach(visit);
  };
  file.dependencies.forEach(visit);
  return result;
}
