import type { Caller } from './authenticate.ts';
import type { Queryable } from './refresh-tokens.ts';

/** An admin action to record in a tenant's audit log. Details must never contain secrets. */
export interface AuditRecord {
  /** Dotted action name, such as `user.disabled` or `settings.updated`. */
  action: string;
  /** User id, key id or other id the action changed; empty when there is none. */
  target?: string;
  /** Description of the change, such as old and new values. */
  details?: Record<string, unknown>;
}

/** Returns the actor id written to audit logs: the user id, or `platform:<id>` for platform admins. */
export function auditActor(caller: Caller): string {
  return caller.isPlatformAdmin ? `platform:${caller.subject}` : caller.subject;
}

/**
 * Appends an entry to the tenant's `audit_log`. Run it on the client of the transaction that
 * makes the change, so the change and its record commit together.
 */
export async function recordAudit(db: Queryable, caller: Caller, record: AuditRecord): Promise<void> {
  await db.query('INSERT INTO audit_log (actor, action, target, details) VALUES ($1, $2, $3, $4::jsonb)', [
    auditActor(caller),
    record.action,
    record.target ?? null,
    JSON.stringify(record.details ?? {}),
  ]);
}

/** Appends an entry to the platform's `platform_audit`, like recordAudit. */
export async function recordPlatformAudit(db: Queryable, caller: Caller, record: AuditRecord): Promise<void> {
  await db.query('INSERT INTO platform_audit (actor, action, target, details) VALUES ($1, $2, $3, $4::jsonb)', [
    auditActor(caller),
    record.action,
    record.target ?? null,
    JSON.stringify(record.details ?? {}),
  ]);
}
