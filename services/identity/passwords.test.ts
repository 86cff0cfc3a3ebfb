import { hash } from '@node-rs/argon2';

import {
  ARGON2_PARAMETERS,
  DEFAULT_PASSWORD_POLICY,
  checkPasswordPolicy,
  hashPassword,
  isValidEmail,
  needsRehash,
  normalizeEmail,
  verifyAgainstDummy,
  verifyPassword,
  type PasswordPolicy,
} from './passwords.ts';

describe('hashPassword and verifyPassword', () => {
  test('hash verifies only the same password', async () => {
    const stored = await hashPassword('Correct horse battery staple');
    expect(stored.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true);
    expect(await verifyPassword(stored, 'Correct horse battery staple')).toBe(true);
    expect(await verifyPassword(stored, 'correct horse battery staple')).toBe(false);
    expect(await verifyPassword(stored, '')).toBe(false);
  });

  test('same password hashes differently', async () => {
    expect(await hashPassword('same-password')).not.toBe(await hashPassword('same-password'));
  });

  test('malformed stored hash throws', async () => {
    await expect(verifyPassword('not-a-hash', 'x')).rejects.toThrow();
  });

  test('dummy verification returns false', async () => {
    expect(await verifyAgainstDummy('anything')).toBe(false);
    expect(await verifyAgainstDummy('')).toBe(false);
  });

  test('needsRehash detects other parameters', async () => {
    expect(needsRehash(await hashPassword('x'))).toBe(false);
    const weaker = await hash('x', { ...ARGON2_PARAMETERS, memoryCost: 4096 });
    expect(needsRehash(weaker)).toBe(true);
  });
});

describe('checkPasswordPolicy', () => {
  const strict: PasswordPolicy = {
    minLength: 12,
    requireUppercase: true,
    requireLowercase: true,
    requireDigit: true,
    requireSymbol: true,
    rejectCommon: true,
  };

  test('default policy accepts a passphrase', () => {
    expect(checkPasswordPolicy('violet tundra ladder', DEFAULT_PASSWORD_POLICY)).toEqual([]);
  });

  test('default policy rejects short passwords', () => {
    expect(checkPasswordPolicy('xk4!pq', DEFAULT_PASSWORD_POLICY)).toEqual([
      'Password must be at least 8 characters long.',
    ]);
  });

  test('length counts code points, not UTF-16 units', () => {
    // Seven emoji are 14 UTF-16 code units but 7 characters.
    const problems = checkPasswordPolicy('🦊🦊🦊🦊🦊🦊🦊', DEFAULT_PASSWORD_POLICY);
    expect(problems).toContain('Password must be at least 8 characters long.');
  });

  test('strict policy lists every missing class', () => {
    expect(checkPasswordPolicy('abc', strict)).toEqual([
      'Password must be at least 12 characters long.',
      'Password must contain an uppercase letter.',
      'Password must contain a digit.',
      'Password must contain a symbol (a character that is not a letter or digit).',
      'Password is too common; choose one that is harder to guess.',
    ]);
    expect(checkPasswordPolicy('ABCDEFGHIJKLM', strict)).toContain('Password must contain a lowercase letter.');
  });

  test('strict policy accepts a mixed password', () => {
    expect(checkPasswordPolicy('Violet-Tundra-7', strict)).toEqual([]);
  });

  test('over-long password is rejected', () => {
    expect(checkPasswordPolicy('a'.repeat(257), DEFAULT_PASSWORD_POLICY)).toContain(
      'Password must be at most 256 characters long.',
    );
  });

  test('common passwords are rejected', () => {
    const common = ['password', 'Password1', '12345678', 'qwerty123', 'P@ssw0rd', 'iloveyou2024', 'Dragon2019!', 'M0nk3y!!', '1q2w3e4r5t'];
    for (const password of common) {
      expect([password, checkPasswordPolicy(password, DEFAULT_PASSWORD_POLICY)]).toEqual([
        password,
        ['Password is too common; choose one that is harder to guess.'],
      ]);
    }
  });

  test('common check can be turned off', () => {
    const policy = { ...DEFAULT_PASSWORD_POLICY, rejectCommon: false };
    expect(checkPasswordPolicy('password', policy)).toEqual([]);
  });

  test('email and local part are rejected', () => {
    const email = 'Ada.Lovelace@Example.com';
    const problem = 'Password must not be the email address or its part before the @.';
    expect(checkPasswordPolicy('ada.lovelace@example.com', DEFAULT_PASSWORD_POLICY, { email })).toEqual([problem]);
    expect(checkPasswordPolicy('ADA.LOVELACE', DEFAULT_PASSWORD_POLICY, { email })).toEqual([problem]);
    expect(checkPasswordPolicy('ada.lovelace-engine', DEFAULT_PASSWORD_POLICY, { email })).toEqual([]);
  });
});

describe('normalizeEmail and isValidEmail', () => {
  test('normalization trims and lowercases', () => {
    expect(normalizeEmail('  Ada@Example.COM \n')).toBe('ada@example.com');
  });

  test('normalization composes Unicode', () => {
    // "e" followed by a combining acute accent becomes the single code point U+00E9.
    expect(normalizeEmail('Rene\u0301@example.com')).toBe('ren\u00e9@example.com');
  });

  test('valid addresses are accepted', () => {
    for (const email of ['ada@example.com', ' Ada+tag@Mail.Example.co.uk ', 'a.b-c_d@sub-domain.example.org', 'josé@exämple.de']) {
      expect([email, isValidEmail(email)]).toEqual([email, true]);
    }
  });

  test('invalid addresses are rejected', () => {
    const invalid = [
      '',
      'ada',
      'ada@',
      '@example.com',
      'ada@example',
      'ada@@example.com',
      'ada lovelace@example.com',
      'ada@exa mple.com',
      '.ada@example.com',
      'ada.@example.com',
      'a..da@example.com',
      'ada@-example.com',
      'ada@example-.com',
      'ada@example..com',
      `${'a'.repeat(65)}@example.com`,
      `ada@${'a'.repeat(250)}.com`,
      '"ada"@example.com',
    ];
    for (const email of invalid) {
      expect([email, isValidEmail(email)]).toEqual([email, false]);
    }
  });
});
