-- Every platform admin sign-in attempt, for the audit trail and for the per-IP throttle that
-- keeps anyone who knows the admin email from locking the account out at will.

CREATE TABLE platform_sign_in_activity (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  email       text NOT NULL,
  ip          text NOT NULL,
  user_agent  text NOT NULL DEFAULT '',
  -- success, invalid_credentials, locked_out, rate_limited
  result      text NOT NULL
);
CREATE INDEX platform_sign_in_activity_ip_idx ON platform_sign_in_activity (ip, at);
