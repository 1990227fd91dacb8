-- Money-safety rules added after the first release: key namespaces, suspense accounts, shard identity.

-- Idempotency keys live in separate namespaces: a deposit or withdrawal key chosen by a caller can
-- never claim (or replay) the key of a transfer step, a hold or a tombstone, whatever it looks like.
ALTER TABLE idempotency_keys ADD COLUMN scope text NOT NULL DEFAULT 'transfer'
  CHECK (scope IN ('transfer', 'movement', 'suspense'));
UPDATE idempotency_keys SET scope = 'movement' WHERE operation IN ('deposit', 'withdrawal');
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (scope, key);
-- Every writer names its namespace.
ALTER TABLE idempotency_keys ALTER COLUMN scope DROP DEFAULT;

-- A refund always lands. When its account has been closed since the debit was posted, the money goes
-- to the shard's suspense account for the currency instead of a closed account nobody can spend
-- from; `verify` lists every suspense balance and an operator pays it out (suspense_release).
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (kind IN ('customer', 'external', 'clearing', 'suspense'));
ALTER TABLE journal DROP CONSTRAINT journal_kind_check;
ALTER TABLE journal ADD CONSTRAINT journal_kind_check
  CHECK (kind IN ('deposit', 'withdrawal', 'transfer_debit', 'transfer_credit', 'refund', 'suspense_release'));

-- A closed account holds nothing: no balance, nothing pending (a refund after closing goes to suspense).
ALTER TABLE accounts ADD CONSTRAINT closed_account_empty
  CHECK (status <> 'closed' OR (posted = 0 AND pending_debits = 0 AND pending_credits = 0));

-- Which shard this database is, and for which slot map. Claimed by the first process that uses it;
-- a process given the shards in another order (or another slot map) refuses to start instead of
-- routing accounts to the wrong database.
CREATE TABLE shard_identity (
  only_row      boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  shard         integer NOT NULL CHECK (shard >= 0),
  slot_map_hash text NOT NULL,
  claimed_at    timestamptz NOT NULL DEFAULT now()
);
