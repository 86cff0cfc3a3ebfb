import { randomBytes } from 'node:crypto';

import { ConnectError } from '@connectrpc/connect';

import { ErrorInfoSchema } from '#gen/google/rpc/error_details_pb.js';
import { createMigratedDatabase } from '../../test/support/database.ts';
import { createSecretBox } from '../core/secret-box.ts';
import {
  hashRefreshToken,
  revokeFamiliesOfUser,
  revokeFamilyOf,
  rotateRefreshToken,
  startFamily,
  wipeExpiredSuccessors,
  type RotateOptions,
} from './refresh-tokens.ts';

type Database = Awaited<ReturnType<typeof createMigratedDatabase>>;

const rotateOptions: RotateOptions = {
  lifetimeSeconds: 3600,
  secretBox: createSecretBox(randomBytes(32)),
  associatedData: 'tenant:acme',
};

let database: Database;
let userId: string;

beforeEach(async () => {
  database = await createMigratedDatabase('tenant');
  const { rows } = await database.pool.query(
    "INSERT INTO users (email) VALUES ('ada@example.com') RETURNING id",
  );
  userId = rows[0].id;
});

afterEach(async () => {
  await database.drop();
});

async function start(lifetimeSeconds = 86_400) {
  return startFamily(database.pool, { userId, clientId: 'web', scope: 'openid offline_access', lifetimeSeconds });
}

/** Moves the use of every token back in time, as if `seconds` had passed since. */
async function ageUses(seconds: number): Promise<void> {
  await database.pool.query(
    `UPDATE refresh_tokens SET used_at = used_at - make_interval(secs => $1) WHERE used_at IS NOT NULL`,
    [seconds],
  );
}

async function reasonOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    return (error as ConnectError).findDetails(ErrorInfoSchema)[0].reason;
  }
  throw new Error('rotation succeeded but a rejection was expected');
}

async function familyRow(familyId: string) {
  const { rows } = await database.pool.query(
    'SELECT revoked_at, revoke_reason FROM refresh_families WHERE id = $1',
    [familyId],
  );
  return rows[0];
}

describe('startFamily', () => {
  test('stores only the token hash', async () => {
    const { token, familyId } = await start();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const { rows } = await database.pool.query('SELECT token_hash, family_id FROM refresh_tokens');
    expect(rows).toEqual([{ token_hash: hashRefreshToken(token), family_id: familyId }]);
    expect(JSON.stringify(rows)).not.toContain(token);
  });
});

describe('rotateRefreshToken', () => {
  test('rotation returns successor and family data', async () => {
    const { token, familyId } = await start();
    const rotated = await rotateRefreshToken(database.pool, token, rotateOptions);
    expect(rotated).toEqual({
      token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      familyId,
      userId,
      clientId: 'web',
      scope: 'openid offline_access',
    });
    expect(rotated.token).not.toBe(token);

    const { rows } = await database.pool.query(
      'SELECT used_at, successor_hash, successor_encrypted FROM refresh_tokens WHERE token_hash = $1',
      [hashRefreshToken(token)],
    );
    expect(rows[0].used_at).not.toBeNull();
    expect(rows[0].successor_hash).toBe(hashRefreshToken(rotated.token));
    expect(rows[0].successor_encrypted).toMatch(/^v1\./);
    expect(rows[0].successor_encrypted).not.toContain(rotated.token);
  });

  test('R0 reuse after R2 revokes family', async () => {
    const r0 = await start();
    const r1 = await rotateRefreshToken(database.pool, r0.token, rotateOptions);
    const r2 = await rotateRefreshToken(database.pool, r1.token, rotateOptions);
    await ageUses(60);

    expect(await reasonOf(rotateRefreshToken(database.pool, r0.token, rotateOptions))).toBe('REFRESH_TOKEN_REUSED');
    expect(await familyRow(r0.familyId)).toEqual({ revoked_at: expect.any(Date), revoke_reason: 'reuse' });
    expect(await reasonOf(rotateRefreshToken(database.pool, r2.token, rotateOptions))).toBe('INVALID_REFRESH_TOKEN');

    const { rows } = await database.pool.query(
      'SELECT count(*)::int AS n FROM refresh_tokens WHERE successor_encrypted IS NOT NULL',
    );
    expect(rows[0].n).toBe(0);
  });

  test('repeat within grace returns same successor', async () => {
    const { token } = await start();
    const first = await rotateRefreshToken(database.pool, token, rotateOptions);
    const second = await rotateRefreshToken(database.pool, token, rotateOptions);
    expect(second).toEqual(first);
  });

  test('concurrent rotations get same successor', async () => {
    const { token, familyId } = await start();
    const [first, second] = await Promise.all([
      rotateRefreshToken(database.pool, token, rotateOptions),
      rotateRefreshToken(database.pool, token, rotateOptions),
    ]);
    expect(second.token).toBe(first.token);
    expect(await familyRow(familyId)).toEqual({ revoked_at: null, revoke_reason: null });
    const { rows } = await database.pool.query('SELECT count(*)::int AS n FROM refresh_tokens');
    expect(rows[0].n).toBe(2);

    // The shared successor is a working token.
    const next = await rotateRefreshToken(database.pool, first.token, rotateOptions);
    expect(next.familyId).toBe(familyId);
  });

  test('repeat after grace revokes family', async () => {
    const { token, familyId } = await start();
    const successor = await rotateRefreshToken(database.pool, token, rotateOptions);
    await ageUses(6);

    expect(await reasonOf(rotateRefreshToken(database.pool, token, rotateOptions))).toBe('REFRESH_TOKEN_REUSED');
    expect((await familyRow(familyId)).revoke_reason).toBe('reuse');
    expect(await reasonOf(rotateRefreshToken(database.pool, successor.token, rotateOptions))).toBe(
      'INVALID_REFRESH_TOKEN',
    );
  });

  test('grace of zero revokes on any repeat', async () => {
    const { token } = await start();
    await rotateRefreshToken(database.pool, token, { ...rotateOptions, graceSeconds: 0 });
    const reason = await reasonOf(rotateRefreshToken(database.pool, token, { ...rotateOptions, graceSeconds: 0 }));
    expect(reason).toBe('REFRESH_TOKEN_REUSED');
  });

  test('unknown and malformed tokens are invalid', async () => {
    for (const token of [randomBytes(32).toString('base64url'), 'short', '', `${'a'.repeat(42)}=`]) {
      expect(await reasonOf(rotateRefreshToken(database.pool, token, rotateOptions))).toBe('INVALID_REFRESH_TOKEN');
    }
  });

  test('expired token is invalid', async () => {
    const { token } = await start();
    await database.pool.query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'");
    expect(await reasonOf(rotateRefreshToken(database.pool, token, rotateOptions))).toBe('INVALID_REFRESH_TOKEN');
  });

  test('expired family is invalid', async () => {
    const { token } = await start();
    await database.pool.query("UPDATE refresh_families SET expires_at = now() - interval '1 second'");
    expect(await reasonOf(rotateRefreshToken(database.pool, token, rotateOptions))).toBe('INVALID_REFRESH_TOKEN');
  });

  test('successor expiry is capped by family', async () => {
    const { token, familyId } = await start(120);
    const successor = await rotateRefreshToken(database.pool, token, { ...rotateOptions, lifetimeSeconds: 86_400 });
    const { rows } = await database.pool.query(
      `SELECT t.expires_at = f.expires_at AS capped
         FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
        WHERE t.token_hash = $1 AND f.id = $2`,
      [hashRefreshToken(successor.token), familyId],
    );
    expect(rows[0].capped).toBe(true);
  });

  test('sealed successor is bound to its token', async () => {
    const { token } = await start();
    await rotateRefreshToken(database.pool, token, rotateOptions);
    const otherTenant = { ...rotateOptions, associatedData: 'tenant:globex' };
    await expect(rotateRefreshToken(database.pool, token, otherTenant)).rejects.toThrow(/failed to decrypt/);
  });

  test('grace above ten seconds is rejected', async () => {
    const { token } = await start();
    await expect(rotateRefreshToken(database.pool, token, { ...rotateOptions, graceSeconds: 11 })).rejects.toThrow(
      /refresh grace must be 0 to 10 seconds/,
    );
  });

  test('rotation wipes expired successors of family', async () => {
    const r0 = await start();
    const r1 = await rotateRefreshToken(database.pool, r0.token, rotateOptions);
    await ageUses(60);
    const sealedOf = async (token: string) => {
      const { rows } = await database.pool.query(
        'SELECT successor_encrypted FROM refresh_tokens WHERE token_hash = $1',
        [hashRefreshToken(token)],
      );
      return rows[0].successor_encrypted;
    };
    expect(await sealedOf(r0.token)).not.toBeNull();

    const r2 = await rotateRefreshToken(database.pool, r1.token, rotateOptions);
    expect(await sealedOf(r0.token)).toBeNull();
    expect(await sealedOf(r1.token)).not.toBeNull();
    expect(r2.familyId).toBe(r0.familyId);
  });
});

describe('revocation', () => {
  test('revokeFamilyOf is idempotent', async () => {
    const { token, familyId } = await start();
    expect(await revokeFamilyOf(database.pool, token)).toBe(familyId);
    const first = await familyRow(familyId);
    expect(first.revoke_reason).toBe('sign_out');

    expect(await revokeFamilyOf(database.pool, token)).toBe(familyId);
    expect(await familyRow(familyId)).toEqual(first);
    expect(await reasonOf(rotateRefreshToken(database.pool, token, rotateOptions))).toBe('INVALID_REFRESH_TOKEN');
  });

  test('revokeFamilyOf ignores unknown tokens', async () => {
    expect(await revokeFamilyOf(database.pool, randomBytes(32).toString('base64url'))).toBeUndefined();
    expect(await revokeFamilyOf(database.pool, 'not-a-token')).toBeUndefined();
  });

  test('revokeFamiliesOfUser revokes live families', async () => {
    const a = await start();
    const b = await start();
    await revokeFamilyOf(database.pool, a.token);
    expect(await revokeFamiliesOfUser(database.pool, userId)).toBe(1);
    expect((await familyRow(a.familyId)).revoke_reason).toBe('sign_out');
    expect((await familyRow(b.familyId)).revoke_reason).toBe('user_revoked');
    expect(await revokeFamiliesOfUser(database.pool, userId)).toBe(0);
    expect(await reasonOf(rotateRefreshToken(database.pool, b.token, rotateOptions))).toBe('INVALID_REFRESH_TOKEN');
  });

  test('wipeExpiredSuccessors clears only old ones', async () => {
    const old = await start();
    const fresh = await start();
    await rotateRefreshToken(database.pool, old.token, rotateOptions);
    await ageUses(60);
    await rotateRefreshToken(database.pool, fresh.token, rotateOptions);

    expect(await wipeExpiredSuccessors(database.pool)).toBe(1);
    const { rows } = await database.pool.query(
      'SELECT token_hash FROM refresh_tokens WHERE successor_encrypted IS NOT NULL',
    );
    expect(rows.map((row) => row.token_hash)).toEqual([hashRefreshToken(fresh.token)]);
  });
});
