-- Functions of one tenant: their immutable versions, executions and secrets.

CREATE TABLE functions (
  name               text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9-]{0,62}$'),
  -- Whether callers need no token to invoke it over HTTP.
  public             boolean NOT NULL DEFAULT false,
  active_version     integer,
  -- Per-function limits within the tenant's ceilings; null means the tenant default.
  timeout_ms         integer,
  memory_mb          integer,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE function_versions (
  function_name  text NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
  version        integer NOT NULL,
  -- Source as deployed (JavaScript or TypeScript) and the JavaScript that runs.
  source         text NOT NULL,
  language       text NOT NULL CHECK (language IN ('javascript', 'typescript')),
  compiled       text NOT NULL,
  -- SHA-256 of the source, hex.
  content_hash   text NOT NULL,
  author         text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (function_name, version)
);

ALTER TABLE functions
  ADD CONSTRAINT functions_active_version_fk
  FOREIGN KEY (name, active_version) REFERENCES function_versions (function_name, version)
  DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE executions (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  function_name  text NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
  version        integer NOT NULL,
  -- http, grpc, event, schedule, replay, invoke
  trigger_type   text NOT NULL,
  -- Event id, schedule slot or request id that caused the run.
  trigger_source text,
  started_at     timestamptz NOT NULL DEFAULT now(),
  duration_ms    double precision,
  -- running, succeeded, error, timeout, cpu_limit, memory_limit
  status         text NOT NULL,
  error          text,
  -- Captured ctx.log lines, bounded in size by the runtime.
  logs           jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX executions_function_idx ON executions (function_name, started_at DESC);
CREATE INDEX executions_status_idx ON executions (status, started_at DESC);

-- Secrets readable by the tenant's functions through ctx.secrets.get; values are encrypted
-- with the master key (AES-256-GCM) and never returned by the API.
CREATE TABLE secrets (
  name             text PRIMARY KEY CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
  value_encrypted  text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
