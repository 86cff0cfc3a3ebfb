import { create, fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate, ValueSchema, type Timestamp } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from '@connectrpc/connect';

import {
  ExecutionLogSchema,
  ExecutionSchema,
  FunctionLimitsSchema,
  FunctionSchema,
  FunctionVersionSchema,
  type Execution,
  type Function as FunctionMessage,
  type FunctionVersion,
} from '#gen/tansu/functions/v1/function_pb.js';
import {
  ActivateFunctionVersionResponseSchema,
  CreateFunctionResponseSchema,
  DeleteFunctionResponseSchema,
  DeployFunctionResponseSchema,
  Functions,
  GetExecutionResponseSchema,
  GetFunctionResponseSchema,
  GetFunctionVersionResponseSchema,
  InvokeFunctionResponseSchema,
  ListExecutionsResponseSchema,
  ListFunctionVersionsResponseSchema,
  ListFunctionsResponseSchema,
} from '#gen/tansu/functions/v1/functions_pb.js';
import { domainError, invalidArgument } from '../core/errors.ts';
import { decodePageToken, encodePageToken, pageSize } from '../core/pagination.ts';
import { requestedTenant, requireTenantCaller } from '../identity/authenticate.ts';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import { compileFunction, type FunctionLanguage } from './compile.ts';
import { getExecution, listExecutions, type ExecutionRecord } from './execution-store.ts';
import {
  activateVersion,
  assertFunctionName,
  deleteFunction,
  deployVersion,
  getFunction,
  getVersion,
  insertFunction,
  listFunctions,
  listVersions,
  type FunctionRecord,
  type FunctionVersionRecord,
} from './function-store.ts';
import { authorizeInvocation } from './invocation-auth.ts';
import { invokeFunction, prepareActiveVersion } from './invoke.ts';
import { checkRequestedLimits, executionLimits, functionCeilings, type StoredLimits } from './limits.ts';

function toFunctionMessage(record: FunctionRecord): FunctionMessage {
  return create(FunctionSchema, {
    name: record.name,
    public: record.public,
    activeVersion: record.activeVersion ?? 0,
    limits: create(FunctionLimitsSchema, { timeoutMs: record.timeoutMs ?? 0, memoryMb: record.memoryMb ?? 0 }),
    createTime: timestampFromDate(record.createdAt),
    updateTime: timestampFromDate(record.updatedAt),
  });
}

function toVersionMessage(record: FunctionVersionRecord, activeVersion: number | null): FunctionVersion {
  return create(FunctionVersionSchema, {
    functionName: record.functionName,
    version: record.version,
    source: record.source,
    language: record.language,
    contentHash: record.contentHash,
    author: record.author,
    createTime: timestampFromDate(record.createdAt),
    active: record.version === activeVersion,
  });
}

function toExecutionMessage(record: ExecutionRecord): Execution {
  return create(ExecutionSchema, {
    id: record.id,
    functionName: record.functionName,
    version: record.version,
    triggerType: record.triggerType,
    triggerSource: record.triggerSource ?? '',
    startTime: timestampFromDate(record.startedAt),
    durationMs: record.durationMs ?? 0,
    status: record.status,
    error: record.error ?? '',
    logs: record.logs.map((entry) =>
      create(ExecutionLogSchema, {
        level: entry.level,
        message: entry.message,
        fields: entry.fields as never,
        time: timestampFromDate(new Date(entry.time)),
      }),
    ),
  });
}

function parseLanguage(language: string): FunctionLanguage {
  if (language === '' || language === 'typescript') return 'typescript';
  if (language === 'javascript') return 'javascript';
  throw invalidArgument('language', `language must be "typescript" or "javascript", got "${language.slice(0, 32)}"`);
}

function optionalDate(timestamp: Timestamp | undefined): Date | undefined {
  return timestamp ? timestampDate(timestamp) : undefined;
}

/** Reads a function's stored limits; both are null for a function that does not exist yet. */
async function storedLimits(tenant: TenantContext, name: string): Promise<StoredLimits> {
  try {
    const record = await getFunction(tenant.db, name);
    return { timeoutMs: record.timeoutMs, memoryMb: record.memoryMb };
  } catch (error) {
    if (ConnectError.from(error).code === Code.NotFound) return { timeoutMs: null, memoryMb: null };
    throw error;
  }
}

/**
 * Loads compiled code in the runtime under the limits the new version will run with, before
 * it is stored. Throws FUNCTION_INVALID_MODULE (INVALID_ARGUMENT) when the module's top level
 * throws or breaches a limit, or when its default export is not a function. The version
 * number is not known yet, so stack frames name the module `<name>@0.js`.
 */
async function checkModule(platform: Platform, tenant: TenantContext, name: string, code: string, limits: StoredLimits) {
  const failure = await platform.functions.runtime.check({
    tenant: tenant.id,
    functionName: name,
    version: 0,
    code,
    limits: executionLimits(limits, functionCeilings(await tenant.settings())),
  });
  if (!failure) return;
  throw domainError('FUNCTION_INVALID_MODULE', `Function module failed to load (${failure.status}): ${failure.error}`, {
    metadata: { status: failure.status },
  });
}

/** Registers the Functions service. */
export function functionsRoutes(platform: Platform) {
  // Authorization comes before the tenant lookup, so a foreign token learns nothing about the tenant.
  async function adminTenant(fieldValue: string, context: HandlerContext): Promise<{ tenant: TenantContext; subject: string }> {
    const tenantId = requestedTenant(fieldValue, context.requestHeader);
    const caller = await requireTenantCaller(platform, context, tenantId, {
      role: 'TenantAdmin',
      allowPlatformAdmin: true,
    });
    const tenant = await platform.tenants.get(tenantId);
    return { tenant, subject: caller.isPlatformAdmin ? `platform:${caller.subject}` : caller.subject };
  }

  return (router: ConnectRouter) =>
    router.service(Functions, {
      async createFunction(request, context) {
        const { tenant } = await adminTenant(request.tenant, context);
        assertFunctionName(request.name);
        const ceilings = functionCeilings(await tenant.settings());
        const limits = checkRequestedLimits(request.limits ?? { timeoutMs: 0, memoryMb: 0 }, ceilings);
        const record = await insertFunction(tenant.db, request.name, request.public, limits);
        platform.functions.versions.forget(tenant.id, request.name);
        return create(CreateFunctionResponseSchema, { function: toFunctionMessage(record) });
      },

      async getFunction(request, context) {
        const { tenant } = await adminTenant(request.tenant, context);
        assertFunctionName(request.name);
        return create(GetFunctionResponseSchema, { function: toFunctionMessage(await getFunction(tenant.db, request.name)) });
      },

      async listFunctions(request, context) {
        const { tenant } = await adminTenant(request.tenant, context);
        const size = pageSize(request.pageSize);
        const after = decodePageToken(request.pageToken, 'functions') ?? '';
        const rows = await listFunctions(tenant.db, after, size + 1);
        const page = rows.slice(0, size);
        return create(ListFunctionsResponseSchema, {
          functions: page.map(toFunctionMessage),
          nextPageToken: rows.length > size ? encodePageToken('functions', page[page.length - 1]!.name) : '',
        });
      },

      async deployFunction(request, context) {
        const { tenant, subject } = await adminTenant(request.tenant, context);
        assertFunctionName(request.name);
        if (request.source.trim() === '') throw invalidArgument('source', 'source is required: send the module source');
        const language = parseLanguage(request.language);
        const limits = request.limits
          ? checkRequestedLimits(request.limits, functionCeilings(await tenant.settings()))
          : undefined;
        const compiled = compileFunction(request.source, language);
        await checkModule(platform, tenant, request.name, compiled.code, limits ?? (await storedLimits(tenant, request.name)));

        const deployed = await deployVersion(tenant.db, {
          name: request.name,
          source: request.source,
          language,
          compiled,
          author: subject,
          public: request.public,
          limits,
        });
        platform.functions.versions.forget(tenant.id, request.name);
        prepareActiveVersion(platform.functions, tenant, request.name);
        platform.logger.info(
          { tenant: tenant.id, function: request.name, version: deployed.version.version, author: subject },
          'function deployed',
        );
        return create(DeployFunctionResponseSchema, {
          version: deployed.version.version,
          functionVersion: toVersionMessage(deployed.version, deployed.function.activeVersion),
          function: toFunctionMessage(deployed.function),
        });
      },

      async listFunctionVersions(request, context) {
        const { tenant } = await adminTenant(request.tenant, context);
        assertFunctionName(request.name);
        const fn = await getFunction(tenant.db, request.name);
        const size = pageSize(request.pageSize);
        const before = decodePageToken(request.pageToken, `versions:${request.name}`);
        const rows = await listVersions(tenant.db, request.name, before ? Number(before) : null, size + 1);
        const page = rows.slice(0, size);
        return create(ListFunctionVersionsResponseSchema, {
          versions: page.map((row) => toVersionMessage(row, fn.activeVersion)),
          nextPageToken:
            rows.length > size ? encodePageToken(`versions:${request.name}`, String(page[page.length - 1]!.version)) : '',
        });
      },

      async getFunctionVersion(request, context) {
        const { tenant } = await adminTenant(request.tenant, context);
        assertFunctionName(request.name);
        const fn = await getFunction(tenant.db, request.name);
        const version = await getVersion(tenant.db, request.name, request.version);
        return create(GetFunctionVersionResponseSchema, { functionVersion: toVersionMessage(version, fn.activeVersion) });
      },

      async activateFunctionVersion(request, context) {
        const { tenant, subject } = await adminTenant(request.tenant, context);
        assertFunctionName(request.name);
        const record = await activateVersion(tenant.db, request.name, request.version);
        platform.functions.versions.forget(tenant.id, request.name);
        prepareActiveVersion(platform.functions, tenant, request.name);
        platform.logger.info(
          { tenant: tenant.id, function: request.name, version: request.version, author: subject },
          'function version activated',
        );
        return create(ActivateFunctionVersionResponseSchema, { function: toFunctionMessage(record) });
      },

      async deleteFunction(request, context) {
        const { tenant, subject } = await adminTenant(request.tenant, context);
        assertFunctionName(request.name);
        await deleteFunction(tenant.db, request.name);
        platform.functions.versions.forget(tenant.id, request.name);
        platform.logger.info({ tenant: tenant.id, function: request.name, author: subject }, 'function deleted');
        return create(DeleteFunctionResponseSchema, {});
      },

      async invokeFunction(request, context) {
        const tenantId = requestedTenant(request.tenant, context.requestHeader);
        assertFunctionName(request.name);
        const { tenant } = await authorizeInvocation(platform, context.requestHeader, tenantId, request.name);
        const outcome = await invokeFunction(platform.functions, tenant, request.name, {
          request: {
            method: (request.method || 'POST').toUpperCase(),
            path: request.path || '/',
            query: { ...request.query },
            headers: Object.fromEntries(Object.entries(request.headers).map(([key, value]) => [key.toLowerCase(), value])),
            body: request.body ? toJson(ValueSchema, request.body) : null,
          },
          trigger: { type: 'grpc', source: context.requestHeader.get('x-request-id') ?? undefined },
        });
        return create(InvokeFunctionResponseSchema, {
          executionId: outcome.executionId,
          status: outcome.status,
          httpStatus: outcome.response?.status ?? 0,
          headers: outcome.response?.headers ?? {},
          body: fromJson(ValueSchema, (outcome.response?.body ?? null) as JsonValue),
          error: outcome.error ?? '',
          durationMs: outcome.durationMs,
        });
      },

      async listExecutions(request, context) {
        const { tenant } = await adminTenant(request.tenant, context);
        assertFunctionName(request.name);
        await getFunction(tenant.db, request.name);
        await platform.functions.recorder.flush(tenant.id);
        const { executions, nextPageToken } = await listExecutions(tenant.db, {
          functionName: request.name,
          status: request.status,
          startTime: optionalDate(request.startTime),
          endTime: optionalDate(request.endTime),
          pageSize: pageSize(request.pageSize),
          pageToken: request.pageToken,
        });
        return create(ListExecutionsResponseSchema, { executions: executions.map(toExecutionMessage), nextPageToken });
      },

      async getExecution(request, context) {
        const { tenant } = await adminTenant(request.tenant, context);
        assertFunctionName(request.name);
        await platform.functions.recorder.flush(tenant.id);
        const record = await getExecution(tenant.db, request.name, request.executionId);
        return create(GetExecutionResponseSchema, { execution: toExecutionMessage(record) });
      },
    });
}
