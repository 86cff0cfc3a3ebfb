-- OAuth server state, social sign-in state and invitations of one tenant database.

-- Authorization codes of the tenant's OAuth endpoints (RFC 6749 section 4.1). Only the SHA-256
-- of a code is stored; a code is used once and lives for a minute.
CREATE TABLE authorization_codes (
  code_hash              text PRIMARY KEY,
  client_id              text NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
  user_id                uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  redirect_uri           text NOT NULL,
  scope                  text NOT NULL,
  nonce                  text,
  code_challenge         text,
  code_challenge_method  text,
  created_at             timestamptz NOT NULL DEFAULT now(),
  expires_at             timestamptz NOT NULL,
  used_at                timestamptz,
  -- Refresh family started by the exchange; revoked when the code is presented twice
  -- (RFC 6749 section 4.1.2).
  family_id              uuid
);

-- Access tokens revoked through the revocation endpoint, by jti, kept until they expire.
CREATE TABLE revoked_access_tokens (
  jti         text PRIMARY KEY,
  expires_at  timestamptz NOT NULL
);

-- Pending social sign-ins: the state parameter (hashed), the PKCE verifier and nonce, sealed.
CREATE TABLE external_login_states (
  state_hash      text PRIMARY KEY,
  provider        text NOT NULL,
  -- Sealed JSON with the code verifier and nonce.
  secrets_sealed  text NOT NULL,
  return_to       text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL
);

-- Invitations by email; only the SHA-256 of the link token is stored.
CREATE TABLE invitations (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email        text NOT NULL CHECK (email = lower(email)),
  role         text NOT NULL REFERENCES roles (name),
  token_hash   text NOT NULL UNIQUE,
  invited_by   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  accepted_at  timestamptz,
  revoked_at   timestamptz,
  user_id      uuid REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX invitations_created_idx ON invitations (created_at DESC, id);
CREATE INDEX clients_created_idx ON clients (created_at DESC, client_id);
