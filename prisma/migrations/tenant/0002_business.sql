-- Business data of one tenant and the outbox that carries its events.

CREATE TABLE collections (
  id          text PRIMARY KEY,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  collection_id  text NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  data           jsonb NOT NULL DEFAULT '{}',
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_collection_idx ON documents (collection_id, created_at);

CREATE TABLE files (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name          text NOT NULL,
  content_type  text NOT NULL DEFAULT 'application/octet-stream',
  size_bytes    bigint NOT NULL,
  content       bytea NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- Events appended in the same transaction as the write that caused them.
CREATE TABLE outbox (
  id          bigserial PRIMARY KEY,
  event_id    uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  type        text NOT NULL,
  subject     text,
  payload     jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  -- Set once the dispatcher has fanned the event out to every matching trigger.
  dispatched_at timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE dispatched_at IS NULL;
