-- The ledger of one shard. Every statement an operation runs touches this database only; a transfer
-- between shards is coordinated by the saga, never by a distributed transaction.

CREATE TABLE accounts (
  id                text PRIMARY KEY,
  kind              text NOT NULL DEFAULT 'customer' CHECK (kind IN ('customer', 'external', 'clearing')),
  currency          char(3) NOT NULL,
  currency_exponent smallint NOT NULL CHECK (currency_exponent BETWEEN 0 AND 4),
  status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
  -- Maintained for customer accounts only. System accounts (external, clearing) are derived from the
  -- journal so that no hot row serialises every posting on the shard.
  posted            bigint NOT NULL DEFAULT 0,
  pending_debits    bigint NOT NULL DEFAULT 0 CHECK (pending_debits >= 0),
  pending_credits   bigint NOT NULL DEFAULT 0 CHECK (pending_credits >= 0),
  overdraft_limit   bigint NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  -- The rule that keeps money safe lives in the database, not only in application code: no
  -- reservation, withdrawal or posting may take available funds below zero.
  CONSTRAINT available_not_negative CHECK (kind <> 'customer' OR posted - pending_debits + overdraft_limit >= 0),
  CONSTRAINT system_accounts_unbalanced CHECK (kind = 'customer' OR (posted = 0 AND pending_debits = 0 AND pending_credits = 0))
);

-- Two-phase reservations. The primary key is the idempotency key of the step that created the hold.
CREATE TABLE holds (
  key          text PRIMARY KEY,
  transfer_id  text NOT NULL,
  account_id   text NOT NULL REFERENCES accounts (id),
  side         text NOT NULL CHECK (side IN ('debit', 'credit')),
  amount       bigint NOT NULL CHECK (amount > 0),
  currency     char(3) NOT NULL,
  state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'posted', 'voided', 'expired')),
  expires_at   timestamptz NOT NULL,
  created_at   timestamptz NOT NULL,
  resolved_at  timestamptz,
  resolved_by  text,
  CONSTRAINT resolved_iff_final CHECK ((state = 'pending') = (resolved_at IS NULL))
);
CREATE INDEX holds_pending_expiry ON holds (expires_at) WHERE state = 'pending';
CREATE INDEX holds_transfer ON holds (transfer_id);
CREATE INDEX holds_account ON holds (account_id);

-- A hold changes state once: pending → posted | voided | expired, and nothing else about it changes.
CREATE FUNCTION holds_change_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.state <> 'pending' THEN
    RAISE EXCEPTION 'hold % is already %', OLD.key, OLD.state USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.key <> OLD.key OR NEW.transfer_id <> OLD.transfer_id OR NEW.account_id <> OLD.account_id
     OR NEW.side <> OLD.side OR NEW.amount <> OLD.amount OR NEW.currency <> OLD.currency
     OR NEW.expires_at <> OLD.expires_at OR NEW.created_at <> OLD.created_at THEN
    RAISE EXCEPTION 'hold % may only change state', OLD.key USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER holds_change_once BEFORE UPDATE ON holds FOR EACH ROW EXECUTE FUNCTION holds_change_once();

-- Append-only double-entry journal. entry_id groups the postings of one local transaction (it is the
-- idempotency key of the operation), and every entry sums to zero per currency.
CREATE TABLE journal (
  id          bigserial PRIMARY KEY,
  entry_id    text NOT NULL,
  transfer_id text,
  hold_key    text REFERENCES holds (key),
  account_id  text NOT NULL REFERENCES accounts (id),
  amount      bigint NOT NULL CHECK (amount <> 0),
  currency    char(3) NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'transfer_debit', 'transfer_credit', 'refund')),
  created_at  timestamptz NOT NULL
);
CREATE INDEX journal_account ON journal (account_id);
CREATE INDEX journal_transfer ON journal (transfer_id) WHERE transfer_id IS NOT NULL;
CREATE INDEX journal_entry ON journal (entry_id);

CREATE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'journal is append-only (a correction is a new balancing posting)' USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE ON journal FOR EACH ROW EXECUTE FUNCTION journal_append_only();

-- Checked at commit, so an entry whose legs were written by separate statements is still proven balanced.
CREATE FUNCTION journal_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  imbalance bigint;
BEGIN
  SELECT sum(amount) INTO imbalance FROM journal WHERE entry_id = NEW.entry_id AND currency = NEW.currency;
  IF imbalance <> 0 THEN
    RAISE EXCEPTION 'journal entry % is unbalanced by % %', NEW.entry_id, imbalance, NEW.currency
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER journal_entry_balanced AFTER INSERT ON journal
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_entry_balanced();

-- The de-duplication table: written in the same transaction as the effect, so an effect exists iff
-- its key does. state: done (effect applied), refused (sticky business refusal, nothing applied),
-- cancelled (tombstone left by a compensation that arrived before its reservation).
CREATE TABLE idempotency_keys (
  key         text PRIMARY KEY,
  operation   text NOT NULL,
  fingerprint text NOT NULL,
  state       text NOT NULL CHECK (state IN ('done', 'refused', 'cancelled')),
  outcome     jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- A posted debit is refunded at most once, whatever key the refund arrives with. A refund entry has
-- two legs (the customer account and the shard's clearing account), hence one leg per hold and account.
CREATE UNIQUE INDEX journal_one_refund_per_hold ON journal (hold_key, account_id) WHERE kind = 'refund';
