-- The messages database: webhook subscribers, one delivery row per (event, endpoint), and a read
-- cursor per ledger shard. Separate from the shards so delivery traffic never loads the ledger.
CREATE TABLE webhook_endpoints (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  url              text NOT NULL,
  description      text NOT NULL DEFAULT '',
  -- Exact types, 'transfer.*' style prefixes, or '*' for every event.
  event_types      text[] NOT NULL CHECK (cardinality(event_types) > 0),
  secret           text NOT NULL CHECK (secret LIKE 'whsec\_%'),
  -- After a rotation the previous secret still signs until it expires, so receivers can switch over.
  previous_secret  text CHECK (previous_secret LIKE 'whsec\_%'),
  previous_expires_at timestamptz,
  enabled          boolean NOT NULL DEFAULT true,
  disabled_reason  text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
  id               bigserial PRIMARY KEY,
  event_id         uuid NOT NULL,
  endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  shard            integer NOT NULL,
  event_type       text NOT NULL,
  event_created_at timestamptz NOT NULL,
  -- The exact body sent on every attempt: a receiver verifying a retry sees the same bytes.
  body             text NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  last_status      integer,
  last_error       text,
  last_latency_ms  integer,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz,
  -- Fan-out is idempotent: reading the same event twice never sends it twice to one endpoint.
  UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (delivered_at) WHERE status = 'delivered';
CREATE INDEX webhook_deliveries_event_time ON webhook_deliveries (event_created_at);

-- One row per attempt, for `transfer webhook deliveries`; pruned with its delivery.
CREATE TABLE webhook_attempts (
  delivery_id  bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
  attempt      integer NOT NULL,
  at           timestamptz NOT NULL DEFAULT now(),
  http_status  integer,
  error        text,
  latency_ms   integer NOT NULL,
  PRIMARY KEY (delivery_id, attempt)
);

-- Where fan-out stopped on each shard: the last (txid, seq) read. Pages go by (txid, seq) below the
-- shard's snapshot xmin, never by seq alone (a lower seq may commit after a higher one).
CREATE TABLE webhook_cursors (
  shard      integer PRIMARY KEY,
  txid       xid8 NOT NULL DEFAULT '0',
  seq        bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);
