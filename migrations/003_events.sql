-- Every ledger effect writes an event in the same transaction, on the same shard: an event exists iff
-- its effect committed. Downstream services learn them through the webhook dispatcher, or read this
-- table with Debezium's outbox event router (columns id, aggregatetype, aggregateid, type, payload).
CREATE TABLE ledger_events (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Insertion order on this shard. Not commit order: a reader pages by (txid, seq) below the
  -- snapshot's xmin, never by seq alone, or it would skip a row that commits late.
  seq           bigserial NOT NULL UNIQUE,
  aggregatetype text NOT NULL CHECK (aggregatetype IN ('transfer', 'account')),
  aggregateid   text NOT NULL,
  type          text NOT NULL,
  payload       jsonb NOT NULL,
  txid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_events_txid ON ledger_events (txid, seq);
CREATE INDEX ledger_events_aggregate ON ledger_events (aggregateid);
