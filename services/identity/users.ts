import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';

import { UserSchema, UserStatus, type User } from '#gen/tansu/identity/v1/user_pb.js';
import type { Database } from '../db/pool-handle.ts';

/** A row of the `users` table with its roles. */
export interface UserRow {
  id: string;
  email: string;
  email_verified: boolean;
  display_name: string;
  password_hash: string | null;
  status: 'active' | 'disabled';
  failed_attempts: number;
  locked_until: Date | null;
  last_sign_in_at: Date | null;
  last_sign_in_ip: string | null;
  created_at: Date;
  roles: string[];
}

const USER_COLUMNS = `u.id, u.email, u.email_verified, u.display_name, u.password_hash, u.status,
  u.failed_attempts, u.locked_until, u.last_sign_in_at, u.last_sign_in_ip, u.created_at,
  coalesce((SELECT array_agg(r.role ORDER BY r.role) FROM user_roles r WHERE r.user_id = u.id), '{}') AS roles`;

/** Finds a user by normalized email. */
export async function findUserByEmail(db: Database, email: string): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users u WHERE u.email = $1`, [email]);
  return rows[0];
}

/** Finds a user by id; undefined for an unknown or malformed id. */
export async function findUserById(db: Database, id: string): Promise<UserRow | undefined> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
  const { rows } = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users u WHERE u.id = $1`, [id]);
  return rows[0];
}

/** Converts a user row to its API message. The password hash never leaves this function. */
export function toUserMessage(row: UserRow): User {
  return create(UserSchema, {
    id: row.id,
    email: row.email,
    emailVerified: row.email_verified,
    displayName: row.display_name,
    roles: row.roles,
    status: row.status === 'active' ? UserStatus.ACTIVE : UserStatus.DISABLED,
    createTime: timestampFromDate(row.created_at),
    lastSignInTime: row.last_sign_in_at ? timestampFromDate(row.last_sign_in_at) : undefined,
    lastSignInIp: row.last_sign_in_ip ?? '',
  });
}
