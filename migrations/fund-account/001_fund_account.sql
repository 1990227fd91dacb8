-- The reference receiver's own database: what a downstream "fund account" service keeps.
-- processed_webhooks is its de-duplication table: a webhook-id is inserted in the same transaction
-- as the effect it caused, so a redelivered event finds its id and changes nothing.
CREATE TABLE processed_webhooks (
  webhook_id  text PRIMARY KEY,
  event_type  text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE fund_balances (
  account    text NOT NULL,
  currency   text NOT NULL,
  -- Minor units, exact (numeric, never float).
  balance    numeric(30, 0) NOT NULL DEFAULT 0,
  credits    integer NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account, currency)
);

CREATE TABLE fund_credits (
  webhook_id  text PRIMARY KEY REFERENCES processed_webhooks (webhook_id),
  transfer_id text NOT NULL,
  account     text NOT NULL,
  currency    text NOT NULL,
  amount      numeric(30, 0) NOT NULL CHECK (amount > 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);
