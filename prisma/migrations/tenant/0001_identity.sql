-- Identity tables of one tenant database.

CREATE TABLE users (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Stored trimmed and lowercased; the unique index makes a second signup of the same
  -- address in any letter case fail.
  email              text NOT NULL UNIQUE CHECK (email = lower(email)),
  email_verified     boolean NOT NULL DEFAULT false,
  display_name       text NOT NULL DEFAULT '',
  -- Null for users who only sign in through an external provider.
  password_hash      text,
  status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  failed_attempts    integer NOT NULL DEFAULT 0,
  locked_until       timestamptz,
  last_sign_in_at    timestamptz,
  last_sign_in_ip    text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE roles (
  name         text PRIMARY KEY,
  description  text NOT NULL DEFAULT ''
);
INSERT INTO roles (name, description) VALUES
  ('TenantAdmin', 'Manages the tenant: users, apps, settings, functions'),
  ('User', 'Regular end user');

CREATE TABLE user_roles (
  user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role     text NOT NULL REFERENCES roles (name),
  PRIMARY KEY (user_id, role)
);

-- Links between users and their accounts at external OAuth providers.
CREATE TABLE external_logins (
  provider          text NOT NULL,
  provider_user_id  text NOT NULL,
  user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  email             text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, provider_user_id)
);

-- Registered OAuth client applications of the tenant.
CREATE TABLE clients (
  client_id           text PRIMARY KEY,
  name                text NOT NULL,
  type                text NOT NULL CHECK (type IN ('public', 'confidential')),
  -- argon2id hash of the secret of a confidential client; null for public clients.
  secret_hash         text,
  redirect_uris       text[] NOT NULL DEFAULT '{}',
  allowed_scopes      text[] NOT NULL DEFAULT '{}',
  enabled             boolean NOT NULL DEFAULT true,
  created_at          timestamptz NOT NULL DEFAULT now()
);

-- RSA signing keys. The newest active key signs; retired keys stay in the JWKS until
-- retired_at plus the rotation grace has passed.
CREATE TABLE signing_keys (
  kid                    text PRIMARY KEY,
  public_jwk             jsonb NOT NULL,
  private_key_encrypted  text NOT NULL,
  created_at             timestamptz NOT NULL DEFAULT now(),
  retired_at             timestamptz
);

-- OAuth provider settings (Google, GitHub, Microsoft), one row per provider kind.
CREATE TABLE external_providers (
  provider                 text PRIMARY KEY,
  client_id                text NOT NULL,
  client_secret_encrypted  text NOT NULL,
  settings                 jsonb NOT NULL DEFAULT '{}',
  enabled                  boolean NOT NULL DEFAULT true,
  status                   text NOT NULL DEFAULT 'untested',
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now()
);

-- Tenant overrides of platform settings; a missing row means the platform default applies.
CREATE TABLE identity_settings (
  name        text PRIMARY KEY,
  value       jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text
);

-- A refresh family is one sign-in session. Every rotation adds a token to it; reuse of a
-- used-up token outside the grace window revokes the whole family.
CREATE TABLE refresh_families (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  client_id     text,
  scope         text NOT NULL DEFAULT '',
  created_at    timestamptz NOT NULL DEFAULT now(),
  -- Absolute end of the session regardless of rotation.
  expires_at    timestamptz NOT NULL,
  revoked_at    timestamptz,
  revoke_reason text
);

CREATE TABLE refresh_tokens (
  -- SHA-256 of the opaque token, hex; the token itself is never stored.
  token_hash     text PRIMARY KEY,
  family_id      uuid NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  used_at        timestamptz,
  -- Hash of the token issued when this one was used, so a repeat inside the grace window
  -- can return the same successor.
  successor_hash text,
  -- The successor in plain form, encrypted with the master key, kept only until the grace
  -- window ends so that a concurrent repeat can be answered with the same token.
  successor_encrypted text
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE login_activity (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
  email       text NOT NULL,
  ip          text,
  user_agent  text,
  -- success, invalid_credentials, locked_out, disabled, rate_limited
  result      text NOT NULL,
  method      text NOT NULL DEFAULT 'password'
);
CREATE INDEX login_activity_user_idx ON login_activity (user_id, at DESC);
CREATE INDEX login_activity_at_idx ON login_activity (at DESC);

CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  actor       text NOT NULL,
  action      text NOT NULL,
  target      text,
  details     jsonb NOT NULL DEFAULT '{}'
);

-- Signup attempts per client IP, for the per-tenant signup rate limit.
CREATE TABLE signup_attempts (
  ip  text NOT NULL,
  at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signup_attempts_ip_idx ON signup_attempts (ip, at);
