-- Sign-in throttling of one tenant database.

-- The per-IP sign-in failure throttle counts an address's recent failures here.
CREATE INDEX login_activity_ip_idx ON login_activity (ip, at DESC);

-- Failed sign-ins with emails that belong to no user, counted like users.failed_attempts, so an
-- unknown email locks the same way a real account does and lockout does not reveal accounts.
CREATE TABLE unknown_email_lockouts (
  email            text PRIMARY KEY,
  failed_attempts  integer NOT NULL DEFAULT 0,
  locked_until     timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX unknown_email_lockouts_updated_idx ON unknown_email_lockouts (updated_at);
