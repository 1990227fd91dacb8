-- Idempotency-Keys the HTTP API is answering right now, shared by every API process of one ledger.
-- Every shard has the table (one schema for all); only shard 0's rows are used, like the control
-- tables. A claim is a lease: the process that holds it renews it while the request runs and deletes
-- it once answered; a process that crashed leaves a claim that expires, and the next request with the
-- key takes it over. `slot` is the key with its namespace: 'transfer:<key>' or 'movement:<key>'.
CREATE TABLE api_key_claims (
  slot       text PRIMARY KEY,
  owner      text NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX api_key_claims_expires_at ON api_key_claims (expires_at);
