-- Events from business and identity tables, event and schedule triggers, their deliveries,
-- dead letters and claimed schedule slots.
--
-- Row triggers append outbox rows in the same transaction as the write, so plain SQL
-- writes emit events too and a rolled-back write emits none. Every insert into the outbox
-- sends NOTIFY on channel `tansu_outbox` with the highest new outbox id as payload; the
-- notification is delivered at commit, and the dispatcher also polls in case it misses one.

-- Formats a timestamp as ISO 8601 in UTC with microseconds, independent of the session's
-- TimeZone setting.
CREATE FUNCTION tansu_iso_time(value timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char(value AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- Appends one event to the outbox and returns its event id. Application code emits events
-- that no table trigger covers through this function, inside the transaction of the change
-- that caused them, for example at sign-in:
--   SELECT tansu_emit_event('user.signed_in', $1::text, jsonb_build_object(...));
CREATE FUNCTION tansu_emit_event(event_type text, event_subject text, event_payload jsonb)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
  new_event_id uuid;
BEGIN
  IF event_type IS NULL OR event_type !~ '^[a-z0-9_]+(\.[a-z0-9_]+)*$' THEN
    RAISE EXCEPTION 'invalid event type "%": use dot-separated segments of a-z, 0-9 and _',
      event_type USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO outbox (type, subject, payload)
  VALUES (event_type, event_subject, coalesce(event_payload, '{}'::jsonb))
  RETURNING event_id INTO new_event_id;
  RETURN new_event_id;
END
$$;

CREATE FUNCTION tansu_document_json(doc documents) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', doc.id,
    'collectionId', doc.collection_id,
    'data', doc.data,
    'createdAt', tansu_iso_time(doc.created_at),
    'updatedAt', tansu_iso_time(doc.updated_at))
$$;

-- document.created, document.updated and document.deleted. The subject is the document's
-- resource name, `collections/{collection}/documents/{id}`. An update that changes no
-- column emits nothing. `changedFields` lists the top-level keys of `data` that were added,
-- removed or changed; `previousData` is the data before the update.
CREATE FUNCTION tansu_document_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  changed text[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM tansu_emit_event('document.created',
      'collections/' || NEW.collection_id || '/documents/' || NEW.id,
      jsonb_build_object('document', tansu_document_json(NEW)));
    RETURN NULL;
  END IF;

  IF TG_OP = 'DELETE' THEN
    PERFORM tansu_emit_event('document.deleted',
      'collections/' || OLD.collection_id || '/documents/' || OLD.id,
      jsonb_build_object('document', tansu_document_json(OLD),
                         'deletedAt', tansu_iso_time(now())));
    RETURN NULL;
  END IF;

  IF OLD IS NOT DISTINCT FROM NEW THEN
    RETURN NULL;
  END IF;
  SELECT coalesce(array_agg(key ORDER BY key), '{}') INTO changed
  FROM (
    SELECT key FROM jsonb_object_keys(CASE WHEN jsonb_typeof(NEW.data) = 'object'
                                           THEN NEW.data ELSE '{}' END) AS key
    UNION
    SELECT key FROM jsonb_object_keys(CASE WHEN jsonb_typeof(OLD.data) = 'object'
                                           THEN OLD.data ELSE '{}' END) AS key
  ) AS keys
  WHERE (NEW.data -> key) IS DISTINCT FROM (OLD.data -> key);
  PERFORM tansu_emit_event('document.updated',
    'collections/' || NEW.collection_id || '/documents/' || NEW.id,
    jsonb_build_object('document', tansu_document_json(NEW),
                       'previousData', OLD.data,
                       'changedFields', to_jsonb(changed)));
  RETURN NULL;
END
$$;

CREATE TRIGGER documents_emit_events
AFTER INSERT OR UPDATE OR DELETE ON documents
FOR EACH ROW EXECUTE FUNCTION tansu_document_events();

-- collection.created and collection.deleted. Deleting a collection cascades to its
-- documents, and each of them emits document.deleted as well.
CREATE FUNCTION tansu_collection_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM tansu_emit_event('collection.created', 'collections/' || NEW.id,
      jsonb_build_object('collection', jsonb_build_object(
        'id', NEW.id, 'createdAt', tansu_iso_time(NEW.created_at))));
  ELSE
    PERFORM tansu_emit_event('collection.deleted', 'collections/' || OLD.id,
      jsonb_build_object('collection', jsonb_build_object(
        'id', OLD.id, 'createdAt', tansu_iso_time(OLD.created_at)),
        'deletedAt', tansu_iso_time(now())));
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER collections_emit_events
AFTER INSERT OR DELETE ON collections
FOR EACH ROW EXECUTE FUNCTION tansu_collection_events();

-- user.created and user.deleted. The payload leaves out the password hash and lockout
-- state. user.signed_in has no table to hook, so the sign-in code calls tansu_emit_event.
CREATE FUNCTION tansu_user_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM tansu_emit_event('user.created', 'users/' || NEW.id,
      jsonb_build_object('user', jsonb_build_object(
        'id', NEW.id, 'email', NEW.email, 'emailVerified', NEW.email_verified,
        'displayName', NEW.display_name, 'createdAt', tansu_iso_time(NEW.created_at))));
  ELSE
    PERFORM tansu_emit_event('user.deleted', 'users/' || OLD.id,
      jsonb_build_object('user', jsonb_build_object('id', OLD.id, 'email', OLD.email),
        'deletedAt', tansu_iso_time(now())));
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER users_emit_events
AFTER INSERT OR DELETE ON users
FOR EACH ROW EXECUTE FUNCTION tansu_user_events();

-- One notification per statement keeps bulk inserts from flooding the channel; the payload
-- is only a wake-up hint, because the dispatcher reads every undispatched row anyway.
CREATE FUNCTION tansu_notify_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('tansu_outbox', (SELECT max(id)::text FROM inserted_rows));
  RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify
AFTER INSERT ON outbox
REFERENCING NEW TABLE AS inserted_rows
FOR EACH STATEMENT EXECUTE FUNCTION tansu_notify_outbox();

-- A trigger runs a function on matching events (kind 'event') or on a cron schedule (kind
-- 'schedule').
CREATE TABLE triggers (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  function_name       text NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
  kind                text NOT NULL CHECK (kind IN ('event', 'schedule')),
  -- Event type pattern such as `document.*`; a `*` segment matches exactly one segment.
  event_pattern       text CHECK (event_pattern ~ '^([a-z0-9_]+|\*)(\.([a-z0-9_]+|\*))*$'),
  -- Five-field cron expression or macro, validated by the application before it is stored.
  cron                text,
  -- IANA time zone the cron expression is read in.
  time_zone           text,
  enabled             boolean NOT NULL DEFAULT true,
  -- Total attempts per delivery of one event, counting the first: the default 4 is the first
  -- try and 3 retries. Applies to event triggers only; a schedule slot runs once.
  max_attempts        integer NOT NULL DEFAULT 4 CHECK (max_attempts BETWEEN 1 AND 20),
  -- Retry n (n = 1, 2, ...) waits backoff_seconds * 2^(n-1): 1 s, 2 s, 4 s by default.
  backoff_seconds     integer NOT NULL DEFAULT 1 CHECK (backoff_seconds BETWEEN 1 AND 3600),
  -- Slots missed while no scheduler ran: 'latest' runs only the latest one, 'skip' runs
  -- none that is older than the scheduler's grace period, 'all' runs each one in order.
  missed_slot_policy  text NOT NULL DEFAULT 'latest'
                      CHECK (missed_slot_policy IN ('latest', 'skip', 'all')),
  -- 'skip' records a slot as skipped while an earlier run of this trigger still runs;
  -- 'allow' runs it anyway.
  overlap_policy      text NOT NULL DEFAULT 'skip' CHECK (overlap_policy IN ('skip', 'allow')),
  last_invoked_at     timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CHECK (
    (kind = 'event' AND event_pattern IS NOT NULL AND cron IS NULL AND time_zone IS NULL)
    OR (kind = 'schedule' AND cron IS NOT NULL AND time_zone IS NOT NULL
        AND event_pattern IS NULL)
  )
);
CREATE INDEX triggers_function_idx ON triggers (function_name);
CREATE INDEX triggers_enabled_kind_idx ON triggers (kind) WHERE enabled;

-- One row per (event, matching trigger), written when the dispatcher fans an outbox event
-- out. `attempts` counts the attempts of the current cycle and is incremented when an
-- attempt is claimed, so a crash during an attempt still counts it. A replay from the
-- dead letters starts a new cycle at 0.
CREATE TABLE deliveries (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  event_id           uuid NOT NULL REFERENCES outbox (event_id) ON DELETE CASCADE,
  trigger_id         uuid NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
  status             text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'succeeded', 'dead')),
  attempts           integer NOT NULL DEFAULT 0,
  next_attempt_at    timestamptz NOT NULL DEFAULT now(),
  -- Lease of the process running the current attempt; once it has passed, another process
  -- may claim the delivery again.
  claimed_until      timestamptz,
  last_error         text,
  last_execution_id  uuid,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  UNIQUE (event_id, trigger_id)
);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_lease_idx ON deliveries (claimed_until) WHERE status = 'running';
CREATE INDEX deliveries_trigger_idx ON deliveries (trigger_id);

-- Deliveries that used up their attempts. One row per delivery: a replay sets replayed_at
-- and starts a new cycle on the same delivery, and if that cycle fails too, this row is
-- updated (replayed_at cleared, replay_count kept) instead of adding a second one.
CREATE TABLE dead_letters (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  delivery_id     uuid NOT NULL UNIQUE REFERENCES deliveries (id) ON DELETE CASCADE,
  event_id        uuid NOT NULL,
  trigger_id      uuid NOT NULL,
  function_name   text NOT NULL,
  event_type      text NOT NULL,
  event_payload   jsonb NOT NULL,
  attempts        integer NOT NULL,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- When the latest cycle failed for good.
  failed_at       timestamptz NOT NULL DEFAULT now(),
  -- Set by a replay; cleared when the replayed cycle fails too.
  replayed_at     timestamptz,
  replay_count    integer NOT NULL DEFAULT 0
);
CREATE INDEX dead_letters_function_idx ON dead_letters (function_name, failed_at);

-- Each (trigger, slot) is claimed by one INSERT, so replicas and restarts run a slot once.
CREATE TABLE schedule_slots (
  trigger_id    uuid NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
  -- The fire time of the slot.
  slot          timestamptz NOT NULL,
  claimed_at    timestamptz NOT NULL DEFAULT now(),
  -- running, succeeded, failed, skipped
  status        text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
  -- Why a slot was skipped: 'overlap' or 'missed'.
  skip_reason   text,
  finished_at   timestamptz,
  error         text,
  execution_id  uuid,
  PRIMARY KEY (trigger_id, slot)
);
CREATE INDEX schedule_slots_running_idx ON schedule_slots (trigger_id) WHERE status = 'running';
