import { randomBytes } from 'node:crypto';

import { hash, parseOptions, verify, type Algorithm, type Options } from '@node-rs/argon2';

import { isCommonPassword } from './common-passwords.ts';

/**
 * argon2id parameters: 19 MiB of memory (19456 KiB), 2 passes, 1 lane, a 32-byte hash and
 * the library's random 16-byte salt. These are the minimum the OWASP Password Storage Cheat
 * Sheet recommends for argon2id (as of 2023). `bench/argon2-verify.ts` prints the throughput
 * they give on the machine it runs on.
 */
export const ARGON2_PARAMETERS = Object.freeze({
  // `Algorithm` is an ambient const enum, which type stripping cannot inline, so the value
  // of `Algorithm.Argon2id` is written out.
  algorithm: 2 as Algorithm,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
  outputLen: 32,
}) satisfies Options;

/**
 * Maximum password length in characters. argon2 accepts any length, but a bound keeps request
 * bodies and policy checks small while leaving room for long passphrases.
 */
export const MAX_PASSWORD_LENGTH = 256;

/** The rules a new password must meet, set per platform with tenant overrides. */
export interface PasswordPolicy {
  /** Minimum length in characters (Unicode code points). */
  minLength: number;
  requireUppercase: boolean;
  requireLowercase: boolean;
  requireDigit: boolean;
  /** Requires a character that is neither a letter nor a digit (spaces count). */
  requireSymbol: boolean;
  /** Rejects passwords on the built-in list of very common passwords and their variants. */
  rejectCommon: boolean;
}

/** Policy used where neither the platform nor the tenant set one. */
export const DEFAULT_PASSWORD_POLICY: Readonly<PasswordPolicy> = Object.freeze({
  minLength: 8,
  requireUppercase: false,
  requireLowercase: false,
  requireDigit: false,
  requireSymbol: false,
  rejectCommon: true,
});

/** Hashes `password` with argon2id; returns the PHC string (`$argon2id$v=19$m=19456,...`). */
export async function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_PARAMETERS);
}

/**
 * Checks `password` against a stored PHC hash. Returns false on mismatch. Throws when the
 * stored hash is not a valid argon2 PHC string, because that is a data error, not a wrong
 * password.
 */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  return verify(passwordHash, password);
}

/**
 * Reports whether a stored hash was made with other parameters than ARGON2_PARAMETERS, so the
 * caller can rehash the password after a successful sign-in.
 */
export function needsRehash(passwordHash: string): boolean {
  const used = parseOptions(passwordHash);
  return (
    used.algorithm !== ARGON2_PARAMETERS.algorithm ||
    used.memoryCost !== ARGON2_PARAMETERS.memoryCost ||
    used.timeCost !== ARGON2_PARAMETERS.timeCost ||
    used.parallelism !== ARGON2_PARAMETERS.parallelism ||
    used.outputLen !== ARGON2_PARAMETERS.outputLen
  );
}

let dummyHash: Promise<string> | undefined;

/**
 * Runs one argon2id verification at the same cost as a real one and returns false. Sign-in
 * calls it for unknown emails, so the response time does not reveal whether an account exists.
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummyHash ??= hash(randomBytes(32).toString('base64url'), ARGON2_PARAMETERS);
  await verify(await dummyHash, password);
  return false;
}

/**
 * Lists the ways `password` breaks `policy`, as sentences to show the user; an empty list
 * means it is accepted. `email` is the account's address: the password must not equal it or
 * its local part, in any letter case.
 */
export function checkPasswordPolicy(
  password: string,
  policy: PasswordPolicy,
  context: { email?: string } = {},
): string[] {
  const problems: string[] = [];
  const length = [...password].length;

  if (length < policy.minLength) {
    problems.push(`Password must be at least ${policy.minLength} characters long.`);
  }
  if (length > MAX_PASSWORD_LENGTH) {
    problems.push(`Password must be at most ${MAX_PASSWORD_LENGTH} characters long.`);
  }
  if (policy.requireUppercase && !/\p{Lu}/u.test(password)) {
    problems.push('Password must contain an uppercase letter.');
  }
  if (policy.requireLowercase && !/\p{Ll}/u.test(password)) {
    problems.push('Password must contain a lowercase letter.');
  }
  if (policy.requireDigit && !/\p{Nd}/u.test(password)) {
    problems.push('Password must contain a digit.');
  }
  if (policy.requireSymbol && !/[^\p{L}\p{Nd}]/u.test(password)) {
    problems.push('Password must contain a symbol (a character that is not a letter or digit).');
  }
  if (policy.rejectCommon && isCommonPassword(password)) {
    problems.push('Password is too common; choose one that is harder to guess.');
  }
  if (context.email && equalsEmail(password, context.email)) {
    problems.push('Password must not be the email address or its part before the @.');
  }
  return problems;
}

function equalsEmail(password: string, email: string): boolean {
  const candidate = password.trim().toLowerCase();
  const address = normalizeEmail(email);
  const localPart = address.slice(0, Math.max(0, address.lastIndexOf('@')));
  return candidate === address || (localPart.length > 0 && candidate === localPart);
}

/** Returns the stored form of an email address: trimmed, lower case, Unicode NFC. */
export function normalizeEmail(email: string): string {
  return email.trim().normalize('NFC').toLowerCase();
}

// A pragmatic check, not RFC 5322: one @, a local part without spaces, and a domain of
// dot-separated labels (letters, digits, hyphens, not starting or ending with a hyphen) with
// at least two labels. Quoted local parts and IP-literal domains are rejected.
const EMAIL_PATTERN =
  /^[^\s@"(),:;<>[\]\\]+@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?$/u;

/**
 * Reports whether `email` (already normalized or not) looks like a deliverable address: at
 * most 254 characters, a local part of at most 64, and a domain with a dot.
 */
export function isValidEmail(email: string): boolean {
  const address = normalizeEmail(email);
  if (address.length > 254) return false;
  const at = address.lastIndexOf('@');
  if (at < 1 || at > 64) return false;
  const localPart = address.slice(0, at);
  if (localPart.startsWith('.') || localPart.endsWith('.') || localPart.includes('..')) return false;
  return EMAIL_PATTERN.test(address);
}
