-- Runs once, on the first start of an empty postgres data volume
-- (docker-entrypoint-initdb.d), as POSTGRES_USER.
-- Temporal's persistence + visibility stores (auto-setup runs with
-- SKIP_DB_CREATE=true and only installs the schemas into these):
CREATE DATABASE temporal;
CREATE DATABASE temporal_visibility;
-- Ledger shards: shard N is the Nth URL of the worker's LEDGER_SHARD_URLS.
-- Only the empty databases are made here; their tables come from migrations/.
CREATE DATABASE ledger_shard_0;
CREATE DATABASE ledger_shard_1;
-- The webhook dispatcher's database (subscribers, deliveries, read cursors): migrations/messages/.
CREATE DATABASE transfer_messages;
