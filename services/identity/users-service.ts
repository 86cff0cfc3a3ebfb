import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter, HandlerContext } from '@connectrpc/connect';
import type pg from 'pg';

import { UserStatus } from '#gen/tansu/identity/v1/user_pb.js';
import {
  AuditEntrySchema,
  DeleteUserResponseSchema,
  DisableUserResponseSchema,
  EnableUserResponseSchema,
  GetUserResponseSchema,
  ListAuditLogResponseSchema,
  ListLoginActivityResponseSchema,
  ListUsersResponseSchema,
  LoginActivitySchema,
  LoginResult,
  SetUserRolesResponseSchema,
  Users,
} from '#gen/tansu/identity/v1/users_pb.js';
import { domainError, invalidArgument } from '../core/errors.ts';
import { decodePageToken, encodePageToken, pageSize } from '../core/pagination.ts';
import { inTransaction, type Database } from '../db/pool-handle.ts';
import type { Platform } from '../platform/platform.ts';
import { recordAudit } from './audit.ts';
import { requestedTenant, requireTenantCaller } from './authenticate.ts';
import { revokeFamiliesOfUser } from './refresh-tokens.ts';
import { findUserById, toUserMessage, type UserRow } from './users.ts';

/** Role that may administer a tenant; at least one active user must keep it. */
export const TENANT_ADMIN_ROLE = 'TenantAdmin';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const RESULTS: Record<string, LoginResult> = {
  success: LoginResult.SUCCESS,
  invalid_credentials: LoginResult.INVALID_CREDENTIALS,
  locked_out: LoginResult.LOCKED_OUT,
  disabled: LoginResult.DISABLED,
  rate_limited: LoginResult.RATE_LIMITED,
};

function assertUserId(id: string, field = 'user_id'): void {
  if (!UUID_PATTERN.test(id)) throw invalidArgument(field, `${field} must be a user id (a UUID), got "${id}"`);
}

/** Escapes `%`, `_` and `\` so a search text matches literally inside ILIKE. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (character) => `\\${character}`)}%`;
}

/** Reads a user for an admin call inside a transaction, locking the row; NOT_FOUND when unknown. */
async function lockUser(client: pg.PoolClient, id: string): Promise<UserRow> {
  assertUserId(id);
  const { rows } = await client.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [id]);
  if (rows.length === 0) {
    throw domainError('USER_NOT_FOUND', `user ${id} does not exist in this tenant`, { metadata: { user_id: id } });
  }
  const user = await findUserById(client as unknown as Database, id);
  return user!;
}

/**
 * Rejects a change that would leave the tenant without an active TenantAdmin. `remaining` is true
 * when the changed user is still an active admin afterwards. A transaction-level advisory
 * lock makes concurrent changes of admins run one after another, so two admins cannot demote
 * each other at once.
 */
async function keepOneAdmin(client: pg.PoolClient, user: UserRow, remaining: boolean): Promise<void> {
  const wasAdmin = user.status === 'active' && user.roles.includes(TENANT_ADMIN_ROLE);
  if (!wasAdmin || remaining) return;
  await client.query("SELECT pg_advisory_xact_lock(hashtext('tansu:tenant-admins'))");
  const { rows } = await client.query<{ count: number }>(
    `SELECT count(*)::int AS count FROM users u JOIN user_roles r ON r.user_id = u.id
      WHERE r.role = $1 AND u.status = 'active' AND u.id <> $2`,
    [TENANT_ADMIN_ROLE, user.id],
  );
  if (rows[0].count === 0) {
    throw domainError(
      'LAST_TENANT_ADMIN',
      `user ${user.id} is the tenant's last active TenantAdmin; make another user TenantAdmin first`,
      { metadata: { user_id: user.id } },
    );
  }
}

/** Decodes a page token whose cursor is an entry id of a bigserial column. */
function idCursor(token: string, kind: string): string | undefined {
  const cursor = decodePageToken(token, kind);
  if (cursor !== undefined && !/^\d{1,19}$/.test(cursor)) {
    throw domainError('INVALID_PAGE_TOKEN', 'page_token is not a token returned by this list; start again without it', {
      metadata: { field: 'page_token' },
    });
  }
  return cursor;
}

function timeOf(value: Timestamp | undefined): Date | undefined {
  return value ? timestampDate(value) : undefined;
}

/** Registers the Users service (tenant admins of the tenant and platform admins). */
export function usersRoutes(platform: Platform) {
  async function tenantFor(field: string, context: HandlerContext) {
    const tenantId = requestedTenant(field, context.requestHeader);
    // Checked before the lookup, so a foreign token learns nothing about the tenant.
    const caller = await requireTenantCaller(platform, context, tenantId, { role: TENANT_ADMIN_ROLE, allowPlatformAdmin: true });
    return { caller, tenant: await platform.tenants.get(tenantId) };
  }

  return (router: ConnectRouter) =>
    router.service(Users, {
      async listUsers(request, context) {
        const { tenant } = await tenantFor(request.tenant, context);
        const size = pageSize(request.pageSize);
        if (request.email.length > 320) throw invalidArgument('email', 'email must be at most 320 characters');
        let status: 'active' | 'disabled' | null = null;
        if (request.status === UserStatus.ACTIVE) status = 'active';
        if (request.status === UserStatus.DISABLED) status = 'disabled';
        // The filters are part of the token's kind, so a token cannot be reused with others.
        const kind = `users:${request.email.toLowerCase()}:${status ?? ''}`;
        const after = decodePageToken(request.pageToken, kind);

        const { rows } = await tenant.db.query<{ id: string }>(
          `SELECT id, email FROM users
            WHERE email > $1 AND ($2::text IS NULL OR email ILIKE $2) AND ($3::text IS NULL OR status = $3)
            ORDER BY email LIMIT $4`,
          [after ?? '', request.email ? likePattern(request.email.toLowerCase()) : null, status, size + 1],
        );
        const page = rows.slice(0, size) as Array<{ id: string; email: string }>;
        const users = await Promise.all(page.map((row) => findUserById(tenant.db, row.id)));
        return create(ListUsersResponseSchema, {
          users: users.filter((user): user is UserRow => user !== undefined).map(toUserMessage),
          nextPageToken: rows.length > size ? encodePageToken(kind, page[page.length - 1].email) : '',
        });
      },

      async getUser(request, context) {
        const { tenant } = await tenantFor(request.tenant, context);
        assertUserId(request.userId);
        const user = await findUserById(tenant.db, request.userId);
        if (!user) throw domainError('USER_NOT_FOUND', `user ${request.userId} does not exist in this tenant`);
        return create(GetUserResponseSchema, { user: toUserMessage(user) });
      },

      async disableUser(request, context) {
        const { caller, tenant } = await tenantFor(request.tenant, context);
        await inTransaction(tenant.db, async (client) => {
          const user = await lockUser(client, request.userId);
          if (user.status === 'disabled') return;
          await keepOneAdmin(client, user, false);
          await client.query("UPDATE users SET status = 'disabled', updated_at = now() WHERE id = $1", [user.id]);
          const revoked = await revokeFamiliesOfUser(client, user.id, 'user_disabled');
          await recordAudit(client, caller, {
            action: 'user.disabled',
            target: user.id,
            details: { email: user.email, revokedSessions: revoked },
          });
        });
        // Access tokens of the user stop working at once in this process (other replicas see it
        // within TOKEN_STATUS_MAX_AGE_MS).
        tenant.tokenStatus.forgetSubject(request.userId);
        const user = await findUserById(tenant.db, request.userId);
        return create(DisableUserResponseSchema, { user: toUserMessage(user!) });
      },

      async enableUser(request, context) {
        const { caller, tenant } = await tenantFor(request.tenant, context);
        await inTransaction(tenant.db, async (client) => {
          const user = await lockUser(client, request.userId);
          if (user.status === 'active') return;
          await client.query(
            "UPDATE users SET status = 'active', failed_attempts = 0, locked_until = NULL, updated_at = now() WHERE id = $1",
            [user.id],
          );
          await recordAudit(client, caller, { action: 'user.enabled', target: user.id, details: { email: user.email } });
        });
        tenant.tokenStatus.forgetSubject(request.userId);
        const user = await findUserById(tenant.db, request.userId);
        return create(EnableUserResponseSchema, { user: toUserMessage(user!) });
      },

      async setUserRoles(request, context) {
        const { caller, tenant } = await tenantFor(request.tenant, context);
        const roles = [...new Set(request.roles.map((role) => role.trim()))].sort();
        await inTransaction(tenant.db, async (client) => {
          const user = await lockUser(client, request.userId);
          const known = await client.query<{ name: string }>('SELECT name FROM roles WHERE name = ANY($1::text[])', [roles]);
          const unknown = roles.filter((role) => !known.rows.some((row) => row.name === role));
          if (unknown.length > 0) {
            const { rows } = await client.query<{ name: string }>('SELECT name FROM roles ORDER BY name');
            throw invalidArgument(
              'roles',
              `roles contains unknown role ${unknown.map((role) => `"${role}"`).join(', ')}; known roles: ${rows.map((row) => row.name).join(', ')}`,
            );
          }
          await keepOneAdmin(client, user, user.status === 'active' && roles.includes(TENANT_ADMIN_ROLE));
          await client.query('DELETE FROM user_roles WHERE user_id = $1', [user.id]);
          await client.query('INSERT INTO user_roles (user_id, role) SELECT $1, unnest($2::text[])', [user.id, roles]);
          await recordAudit(client, caller, {
            action: 'user.roles_set',
            target: user.id,
            details: { email: user.email, from: user.roles, to: roles },
          });
        });
        const user = await findUserById(tenant.db, request.userId);
        return create(SetUserRolesResponseSchema, { user: toUserMessage(user!) });
      },

      async deleteUser(request, context) {
        const { caller, tenant } = await tenantFor(request.tenant, context);
        await inTransaction(tenant.db, async (client) => {
          const user = await lockUser(client, request.userId);
          await keepOneAdmin(client, user, false);
          // Families, tokens, roles and external logins go with the user (ON DELETE CASCADE).
          await client.query('DELETE FROM users WHERE id = $1', [user.id]);
          await recordAudit(client, caller, {
            action: 'user.deleted',
            target: user.id,
            details: { email: user.email, roles: user.roles },
          });
        });
        tenant.tokenStatus.forgetSubject(request.userId);
        return create(DeleteUserResponseSchema, {});
      },

      async listLoginActivity(request, context) {
        const { tenant } = await tenantFor(request.tenant, context);
        const size = pageSize(request.pageSize);
        if (request.userId) assertUserId(request.userId);
        const start = timeOf(request.startTime);
        const end = timeOf(request.endTime);
        if (start && end && start >= end) {
          throw invalidArgument('end_time', 'end_time must be after start_time');
        }
        const result = Object.entries(RESULTS).find(([, value]) => value === request.result)?.[0] ?? null;
        const kind = `login-activity:${request.userId}:${start?.toISOString() ?? ''}:${end?.toISOString() ?? ''}:${result ?? ''}`;
        const before = idCursor(request.pageToken, kind);

        const { rows } = await tenant.db.query(
          `SELECT id, at, user_id, email, ip, user_agent, result, method FROM login_activity
            WHERE ($1::bigint IS NULL OR id < $1)
              AND ($2::uuid IS NULL OR user_id = $2)
              AND ($3::timestamptz IS NULL OR at >= $3)
              AND ($4::timestamptz IS NULL OR at < $4)
              AND ($5::text IS NULL OR result = $5)
            ORDER BY id DESC LIMIT $6`,
          [before ?? null, request.userId || null, start ?? null, end ?? null, result, size + 1],
        );
        const page = rows.slice(0, size);
        return create(ListLoginActivityResponseSchema, {
          entries: page.map((row) =>
            create(LoginActivitySchema, {
              id: String(row.id),
              time: timestampFromDate(row.at),
              userId: row.user_id ?? '',
              email: row.email,
              ip: row.ip ?? '',
              userAgent: row.user_agent ?? '',
              result: RESULTS[row.result] ?? LoginResult.UNSPECIFIED,
              method: row.method,
            }),
          ),
          nextPageToken: rows.length > size ? encodePageToken(kind, String(page[page.length - 1].id)) : '',
        });
      },

      async listAuditLog(request, context) {
        const { tenant } = await tenantFor(request.tenant, context);
        const size = pageSize(request.pageSize);
        const kind = `audit-log:${request.action}`;
        const before = idCursor(request.pageToken, kind);
        const { rows } = await tenant.db.query(
          `SELECT id, at, actor, action, target, details FROM audit_log
            WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR action = $2)
            ORDER BY id DESC LIMIT $3`,
          [before ?? null, request.action || null, size + 1],
        );
        const page = rows.slice(0, size);
        return create(ListAuditLogResponseSchema, {
          entries: page.map((row) =>
            create(AuditEntrySchema, {
              id: String(row.id),
              time: timestampFromDate(row.at),
              actor: row.actor,
              action: row.action,
              target: row.target ?? '',
              details: row.details,
            }),
          ),
          nextPageToken: rows.length > size ? encodePageToken(kind, String(page[page.length - 1].id)) : '',
        });
      },
    });
}
