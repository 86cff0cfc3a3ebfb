import { createHash, randomBytes } from 'node:crypto';

import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter } from '@connectrpc/connect';
import nodemailer from 'nodemailer';

import {
  AcceptInvitationResponseSchema,
  CreateInvitationResponseSchema,
  InvitationSchema,
  Invitations,
  ListInvitationsResponseSchema,
  RevokeInvitationResponseSchema,
} from '#gen/tansu/identity/v1/invitations_pb.js';
import { domainError, invalidArgument } from '../core/errors.ts';
import { decodePageToken, encodePageToken, pageSize } from '../core/pagination.ts';
import { inTransaction } from '../db/pool-handle.ts';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import { requestedTenant } from './authenticate.ts';
import { checkPasswordPolicy, hashPassword, isValidEmail, normalizeEmail } from './passwords.ts';
import { startSession } from './sessions.ts';
import { recordAudit, requireTenantAdmin } from './tenant-admin.ts';
import { findUserById } from './users.ts';

/** How long an invitation link works, in seconds. */
export const INVITATION_SECONDS = 24 * 60 * 60;

const ROLES = ['User', 'TenantAdmin'];

interface InvitationRow {
  id: string;
  email: string;
  role: string;
  created_at: Date;
  expires_at: Date;
  accepted_at: Date | null;
  revoked_at: Date | null;
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

function stateOf(row: InvitationRow): string {
  if (row.accepted_at) return 'accepted';
  if (row.revoked_at) return 'revoked';
  return row.expires_at.getTime() <= Date.now() ? 'expired' : 'pending';
}

function toMessage(row: InvitationRow) {
  return create(InvitationSchema, {
    invitationId: row.id,
    email: row.email,
    role: row.role,
    state: stateOf(row),
    createTime: timestampFromDate(row.created_at),
    expireTime: timestampFromDate(row.expires_at),
  });
}

/** Registers the Invitations service; mail goes through `TANSU_SMTP_URL`. */
export function invitationsRoutes(platform: Platform) {
  const transport = platform.config.smtpUrl ? nodemailer.createTransport(platform.config.smtpUrl) : undefined;

  return (router: ConnectRouter) =>
    router.service(Invitations, {
      async createInvitation(request, context) {
        const { caller, tenant } = await requireTenantAdmin(platform, context, request.tenant);
        const email = normalizeEmail(request.email);
        if (!isValidEmail(email)) throw invalidArgument('email', 'email must be an email address such as ada@example.com');
        const role = request.role || 'User';
        if (!ROLES.includes(role)) throw invalidArgument('role', `role must be one of ${ROLES.join(', ')}`);
        if (!transport) {
          throw domainError('FAILED_PRECONDITION', 'invitations need a mail server; set TANSU_SMTP_URL on the server');
        }

        const token = randomBytes(32).toString('base64url');
        const link = `${platform.publicBaseUrl()}/identity/${tenant.id}/invitations/accept?token=${token}`;
        const row = await inTransaction(tenant.db, async (db) => {
          const existing = await db.query('SELECT 1 FROM users WHERE email = $1', [email]);
          if (existing.rowCount) {
            throw domainError('EMAIL_ALREADY_EXISTS', `a user with email ${email} already exists in this tenant`, {
              metadata: { field: 'email' },
            });
          }
          await db.query(
            'UPDATE invitations SET revoked_at = now() WHERE email = $1 AND accepted_at IS NULL AND revoked_at IS NULL',
            [email],
          );
          const { rows } = await db.query<InvitationRow>(
            `INSERT INTO invitations (email, role, token_hash, invited_by, expires_at)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING *`,
            [email, role, hashToken(token), caller.subject, INVITATION_SECONDS],
          );
          await recordAudit(db, { actor: caller.subject, action: 'invitation.create', target: rows[0].id, details: { email, role } });
          // Sending inside the transaction means a refused mail leaves no invitation behind.
          try {
            await transport.sendMail({
              from: platform.config.mailFrom,
              to: email,
              subject: `You are invited to ${tenant.record.displayName}`,
              text: `You are invited to ${tenant.record.displayName} as ${role}.\n\nAccept within 24 hours: ${link}\n`,
            });
          } catch (error) {
            throw domainError('UNAVAILABLE', 'the mail server did not accept the invitation mail; try again later', { cause: error });
          }
          return rows[0];
        });
        return create(CreateInvitationResponseSchema, { invitation: toMessage(row) });
      },

      async listInvitations(request, context) {
        const { tenant } = await requireTenantAdmin(platform, context, request.tenant);
        const size = pageSize(request.pageSize);
        const after = decodePageToken(request.pageToken, 'invitations');
        const { rows } = after
          ? await tenant.db.query<InvitationRow>(
              `SELECT * FROM invitations WHERE (created_at, id) < ($2::timestamptz, $3::uuid)
               ORDER BY created_at DESC, id DESC LIMIT $1`,
              [size + 1, after.split('|')[0], after.split('|')[1]],
            )
          : await tenant.db.query<InvitationRow>('SELECT * FROM invitations ORDER BY created_at DESC, id DESC LIMIT $1', [size + 1]);
        const page = rows.slice(0, size);
        const last = page[page.length - 1];
        return create(ListInvitationsResponseSchema, {
          invitations: page.map(toMessage),
          nextPageToken: rows.length > size ? encodePageToken('invitations', `${last.created_at.toISOString()}|${last.id}`) : '',
        });
      },

      async revokeInvitation(request, context) {
        const { caller, tenant } = await requireTenantAdmin(platform, context, request.tenant);
        if (!/^[0-9a-f-]{36}$/i.test(request.invitationId)) throw domainError('NOT_FOUND', 'no such invitation');
        await inTransaction(tenant.db, async (db) => {
          const { rows } = await db.query<InvitationRow>('SELECT * FROM invitations WHERE id = $1 FOR UPDATE', [request.invitationId]);
          if (!rows[0]) throw domainError('NOT_FOUND', 'no such invitation', { metadata: { field: 'invitation_id' } });
          if (rows[0].accepted_at || rows[0].revoked_at) {
            throw domainError('FAILED_PRECONDITION', `the invitation is already ${stateOf(rows[0])}`);
          }
          await db.query('UPDATE invitations SET revoked_at = now() WHERE id = $1', [request.invitationId]);
          await recordAudit(db, { actor: caller.subject, action: 'invitation.revoke', target: request.invitationId });
        });
        return create(RevokeInvitationResponseSchema, {});
      },

      async acceptInvitation(request, context) {
        const tenant = await platform.tenants.get(requestedTenant(request.tenant, context.requestHeader));
        const userId = await acceptInvitation(tenant, request);
        const user = await findUserById(tenant.db, userId);
        if (!user) throw domainError('INTERNAL', 'the new user could not be read back');
        const tokens = await startSession(tenant, user);
        return create(AcceptInvitationResponseSchema, { ...tokens, expiresIn: BigInt(tokens.expiresIn), userId });
      },
    });
}

/** A pending invitation's email and role, found by its link token. */
export interface PendingInvitation {
  email: string;
  role: string;
}

/** Finds the pending invitation of a link token; undefined when it is unknown, used, revoked or expired. */
export async function findPendingInvitation(tenant: TenantContext, token: string): Promise<PendingInvitation | undefined> {
  if (!token) return undefined;
  const { rows } = await tenant.db.query<InvitationRow>('SELECT * FROM invitations WHERE token_hash = $1', [hashToken(token)]);
  if (!rows[0] || stateOf(rows[0]) !== 'pending') return undefined;
  return { email: rows[0].email, role: rows[0].role };
}

/**
 * Accepts an invitation: creates the invited user with the password and the invitation's role,
 * and marks the invitation used. Returns the new user's id. Throws INVITATION_NOT_USABLE for a
 * token that is unknown, used, revoked or expired, WEAK_PASSWORD, and EMAIL_ALREADY_EXISTS.
 */
export async function acceptInvitation(
  tenant: TenantContext,
  request: { token: string; password: string; displayName: string },
): Promise<string> {
  const notUsable = () =>
    domainError('INVITATION_NOT_USABLE', 'the invitation link is unknown, used, revoked or expired; ask for a new one');
  if (!request.token) throw invalidArgument('token', 'token is required');
  const settings = await tenant.settings();
  const peek = await tenant.db.query<{ email: string }>('SELECT email FROM invitations WHERE token_hash = $1', [
    hashToken(request.token),
  ]);
  if (!peek.rows[0]) throw notUsable();
  const problems = checkPasswordPolicy(request.password, settings.passwordPolicy, { email: peek.rows[0].email });
  if (problems.length > 0) {
    throw domainError('WEAK_PASSWORD', `password rejected: ${problems.join('; ')}`, { metadata: { field: 'password' } });
  }
  const passwordHash = await hashPassword(request.password);

  return inTransaction(tenant.db, async (db) => {
    const { rows } = await db.query<InvitationRow>('SELECT * FROM invitations WHERE token_hash = $1 FOR UPDATE', [
      hashToken(request.token),
    ]);
    const invitation = rows[0];
    if (!invitation || stateOf(invitation) !== 'pending') throw notUsable();
    const inserted = await db.query<{ id: string }>(
      `INSERT INTO users (email, email_verified, display_name, password_hash) VALUES ($1, true, $2, $3)
       ON CONFLICT (email) DO NOTHING RETURNING id`,
      [invitation.email, request.displayName.trim().slice(0, 200), passwordHash],
    );
    if (!inserted.rows[0]) {
      throw domainError('EMAIL_ALREADY_EXISTS', `a user with email ${invitation.email} already exists; sign in instead`);
    }
    const id = inserted.rows[0].id;
    await db.query('INSERT INTO user_roles (user_id, role) VALUES ($1, $2)', [id, invitation.role]);
    await db.query('UPDATE invitations SET accepted_at = now(), user_id = $2 WHERE id = $1', [invitation.id, id]);
    await recordAudit(db, { actor: id, action: 'invitation.accept', target: invitation.id, details: { role: invitation.role } });
    return id;
  });
}
