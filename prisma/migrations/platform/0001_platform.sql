-- Platform database: tenants and where they live, platform admins, the platform signing key,
-- platform settings and the platform audit log.

CREATE TABLE tenants (
  id             text PRIMARY KEY,
  display_name   text NOT NULL,
  -- 'provisioning' until every step succeeded; a row left in this state by a crash is
  -- removed, with its database, at the next start.
  state          text NOT NULL CHECK (state IN ('provisioning', 'active')),
  database_name  text NOT NULL UNIQUE,
  -- Which PostgreSQL cluster holds the tenant database; 'default' is the server's own.
  cluster        text NOT NULL DEFAULT 'default',
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE platform_admins (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email              text NOT NULL UNIQUE,
  password_hash      text NOT NULL,
  failed_attempts    integer NOT NULL DEFAULT 0,
  locked_until       timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now()
);

-- RSA keys that sign platform admin tokens. Private keys are encrypted with the master key.
CREATE TABLE platform_signing_keys (
  kid                    text PRIMARY KEY,
  public_jwk             jsonb NOT NULL,
  private_key_encrypted  text NOT NULL,
  created_at             timestamptz NOT NULL DEFAULT now(),
  retired_at             timestamptz
);

-- One row per setting name; the value is JSON so settings of any shape share the table.
CREATE TABLE platform_settings (
  name        text PRIMARY KEY,
  value       jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text
);

CREATE TABLE platform_audit (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  actor       text NOT NULL,
  action      text NOT NULL,
  target      text,
  details     jsonb NOT NULL DEFAULT '{}'
);
