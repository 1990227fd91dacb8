-- The transfer request table a service adds to ITS OWN PostgreSQL database, so that it can ask for a
-- transfer in the same local transaction as its own change (the transactional outbox). Installed by
-- `transfer messages install --database URL`; safe to run again.
--
--   BEGIN;
--   INSERT INTO orders (id, user_id, total) VALUES ('o-42', 'alice', 1250);
--   INSERT INTO transfer_outbox.transfer_requests (id, from_account, to_account, amount, currency, memo)
--     VALUES ('order-o-42-payout', 'alice-wallet', 'fund-42', '1250', 'USD', 'order o-42');
--   COMMIT;
--
-- The relay (`transfer relay`) starts one transfer per row, with the row's id as the transfer id
-- (so starting it again changes nothing), and writes back what happened: state, reason, outcome.
-- Columns are deliberately loose (text): a malformed row is accepted here, then rejected by the
-- relay with a reason, instead of failing the producer's own transaction.

CREATE SCHEMA IF NOT EXISTS transfer_outbox;

CREATE TABLE IF NOT EXISTS transfer_outbox.transfer_requests (
  id           text PRIMARY KEY,
  from_account text,
  to_account   text,
  amount       text,            -- minor units, digits only: '1250' is 12.50 USD
  currency     text,
  memo         text,
  requested_at timestamptz NOT NULL DEFAULT now(),
  -- pending → started → completed | failed; or rejected (bad request, reused id). Written by the relay.
  state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'started', 'completed', 'failed', 'rejected')),
  reason       text,
  outcome      jsonb,
  attempts     integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  handled_at   timestamptz,
  -- The inserting transaction: lets an operator see how long a request waited for its commit.
  txid         xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX IF NOT EXISTS transfer_requests_pending ON transfer_outbox.transfer_requests (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS transfer_requests_started ON transfer_outbox.transfer_requests (handled_at) WHERE state = 'started';

-- Wakes a polling relay at commit (NOTIFY is delivered only when the inserting transaction commits).
CREATE OR REPLACE FUNCTION transfer_outbox.notify_request() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('transfer_requests', '');
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS transfer_requests_notify ON transfer_outbox.transfer_requests;
CREATE TRIGGER transfer_requests_notify AFTER INSERT ON transfer_outbox.transfer_requests
  FOR EACH STATEMENT EXECUTE FUNCTION transfer_outbox.notify_request();

-- For the log relay: inserts only (the relay's own updates are not re-delivered to it).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'transfer_requests') THEN
    CREATE PUBLICATION transfer_requests FOR TABLE transfer_outbox.transfer_requests WITH (publish = 'insert');
  END IF;
END $$;
