-- Online slot moves (docs/scaling.md, "Ledger shards and slot moves").
--
-- Every shard knows which slots it owns (slot_state). Every step function first asks
-- ledger_route(account) whether the account's slot is served here; when it is not, the step returns
-- {"moved": {"shard": N}} and changes nothing, and the Ledger retries on shard N. So a step routed
-- by a stale slot map is never applied on the wrong shard: ownership is decided by the shard, under
-- locks, not by the caller's map. The slot map itself (a routing hint, versioned) and the shard
-- registry live in control tables that only shard 0's copy of uses.

-- The slot of an account id: CRC16/XMODEM of its UTF-8 bytes mod 16384 (src/domain/slots.ts).
CREATE FUNCTION ledger_slot(p_id text) RETURNS integer LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  b constant bytea := convert_to(p_id, 'UTF8');
  crc integer := 0;
BEGIN
  FOR i IN 0 .. length(b) - 1 LOOP
    crc := crc # (get_byte(b, i) << 8);
    FOR j IN 1 .. 8 LOOP
      IF (crc & 32768) <> 0 THEN
        crc := ((crc << 1) # 4129) & 65535;
      ELSE
        crc := (crc << 1) & 65535;
      END IF;
    END LOOP;
  END LOOP;
  RETURN crc % 16384;
END $$;

-- What this shard does with each slot. No rows: a shard set up before slot moves; it serves every
-- slot it is asked for (the Ledger fills the table from the slot map before its first operation).
--   owned      served here
--   migrating  served here, being moved to `peer`: an account already moved answers "moved"
--   importing  being moved here from `peer`: only accounts already moved are served here
--   absent     served elsewhere (`peer`, when known): everything answers "moved"
CREATE TABLE slot_state (
  slot    integer PRIMARY KEY CHECK (slot BETWEEN 0 AND 16383),
  state   text NOT NULL CHECK (state IN ('owned', 'migrating', 'importing', 'absent')),
  peer    integer CHECK (peer >= 0),
  move_id bigint,
  CONSTRAINT peer_known CHECK (state IN ('owned', 'absent') OR (peer IS NOT NULL AND move_id IS NOT NULL))
);

-- Account ids moved during a move still running: 'out' on the source (a step for it answers
-- "moved"), 'in' on the target (served here although the slot is still importing). `confirmed` on
-- the target: the source has let go of the id (until then the sweeper leaves its holds alone).
CREATE TABLE slot_moved_ids (
  account_id text PRIMARY KEY,
  direction  text NOT NULL CHECK (direction IN ('out', 'in')),
  peer       integer NOT NULL,
  move_id    bigint NOT NULL,
  confirmed  boolean NOT NULL DEFAULT true,
  moved_at   timestamptz NOT NULL DEFAULT now()
);

-- Which account an idempotency record belongs to, so it moves with the account: a retry after the
-- move is answered from the moved record (replayed), never applied again. Filled by the step
-- functions through ledger_route (a transaction-local setting), whatever key the step claims (its
-- own, or a tombstone under a hold's key). NULL: not an account's (a suspense payout out of the ledger).
ALTER TABLE idempotency_keys ADD COLUMN account_id text DEFAULT nullif(current_setting('ledger.account', true), '');
UPDATE idempotency_keys SET account_id = coalesce(
  outcome #>> '{hold,accountId}', outcome #>> '{postings,0,accountId}', outcome #>> '{details,account}',
  (SELECT h.account_id FROM holds h WHERE h.key = idempotency_keys.key));
CREATE INDEX idempotency_keys_slot ON idempotency_keys (ledger_slot(account_id)) WHERE account_id IS NOT NULL;
CREATE INDEX idempotency_keys_account ON idempotency_keys (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX accounts_slot ON accounts (ledger_slot(id)) WHERE kind = 'customer';
CREATE INDEX holds_slot ON holds (ledger_slot(account_id));

-- The journal stays append-only, except for the slot mover, which deletes the entries it has copied
-- to another shard in the transaction that hands the account over (ledger.slot_move = 'on').
CREATE OR REPLACE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('ledger.slot_move', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'journal is append-only (a correction is a new balancing posting)' USING ERRCODE = 'check_violation';
END $$;

CREATE FUNCTION ledger_moved(p_slot integer, p_peer integer, p_account_id text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('replayed', false, 'moved', jsonb_build_object('slot', p_slot, 'shard', p_peer, 'account', p_account_id))
$$;

-- Whether a step on this account runs here: NULL (go on), or the "moved" answer. Takes the locks
-- that order it against the mover: a key-share lock on the slot's row (a state change waits for
-- the steps in flight), and while the slot moves, the account id's advisory lock (the mover holds it
-- while it copies and hands over that id): a step runs entirely before the hand-over, here, or after
-- it, on the target.
CREATE FUNCTION ledger_route(p_account_id text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_slot integer;
  s slot_state;
BEGIN
  IF p_account_id IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('ledger.account', p_account_id, true);
  v_slot := ledger_slot(p_account_id);
  SELECT * INTO s FROM slot_state WHERE slot = v_slot FOR KEY SHARE;
  IF NOT FOUND OR s.state = 'owned' THEN
    RETURN NULL;
  END IF;
  IF s.state = 'absent' THEN
    RETURN ledger_moved(v_slot, s.peer, p_account_id);
  END IF;
  PERFORM pg_advisory_xact_lock(7233004, hashtext(p_account_id));
  IF s.state = 'migrating' THEN
    IF EXISTS (SELECT 1 FROM slot_moved_ids WHERE account_id = p_account_id AND direction = 'out') THEN
      RETURN ledger_moved(v_slot, s.peer, p_account_id);
    END IF;
    RETURN NULL;
  END IF;
  -- importing: only what the source has handed over
  IF EXISTS (SELECT 1 FROM slot_moved_ids WHERE account_id = p_account_id AND direction = 'in') THEN
    RETURN NULL;
  END IF;
  RETURN ledger_moved(v_slot, s.peer, p_account_id);
END $$;

-- Each step function becomes ledger_route + the step as before (renamed *_here).
ALTER FUNCTION ledger_reserve(integer, bigint, text, text, text, text, text, bigint, text, bigint) RENAME TO ledger_reserve_here;
ALTER FUNCTION ledger_post(integer, bigint, text, text, text, text, text) RENAME TO ledger_post_here;
ALTER FUNCTION ledger_void(integer, bigint, text, text, text, text, text, text) RENAME TO ledger_void_here;
ALTER FUNCTION ledger_refund(integer, bigint, text, text, text, text, text) RENAME TO ledger_refund_here;
ALTER FUNCTION ledger_move(integer, bigint, text, text, text, text, bigint, text) RENAME TO ledger_move_here;
ALTER FUNCTION ledger_release_suspense(integer, bigint, text, text, text, bigint, text) RENAME TO ledger_release_suspense_here;

CREATE FUNCTION ledger_reserve(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_transfer_id text, p_account_id text,
  p_side text, p_amount bigint, p_currency text, p_ttl_ms bigint
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_moved constant jsonb := ledger_route(p_account_id);
BEGIN
  RETURN coalesce(v_moved, ledger_reserve_here(p_shard, p_offset_ms, p_key, p_print, p_transfer_id, p_account_id, p_side, p_amount, p_currency, p_ttl_ms));
END $$;

CREATE FUNCTION ledger_post(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_hold_key text, p_account_id text, p_transfer_id text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_moved constant jsonb := ledger_route(p_account_id);
BEGIN
  RETURN coalesce(v_moved, ledger_post_here(p_shard, p_offset_ms, p_key, p_print, p_hold_key, p_account_id, p_transfer_id));
END $$;

CREATE FUNCTION ledger_void(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_hold_key text, p_account_id text, p_transfer_id text,
  p_tombstone_print text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_moved constant jsonb := ledger_route(p_account_id);
BEGIN
  RETURN coalesce(v_moved, ledger_void_here(p_shard, p_offset_ms, p_key, p_print, p_hold_key, p_account_id, p_transfer_id, p_tombstone_print));
END $$;

CREATE FUNCTION ledger_refund(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_hold_key text, p_account_id text, p_transfer_id text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_moved constant jsonb := ledger_route(p_account_id);
BEGIN
  RETURN coalesce(v_moved, ledger_refund_here(p_shard, p_offset_ms, p_key, p_print, p_hold_key, p_account_id, p_transfer_id));
END $$;

CREATE FUNCTION ledger_move(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_kind text, p_account_id text, p_amount bigint, p_currency text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_moved constant jsonb := ledger_route(p_account_id);
BEGIN
  RETURN coalesce(v_moved, ledger_move_here(p_shard, p_offset_ms, p_key, p_print, p_kind, p_account_id, p_amount, p_currency));
END $$;

CREATE FUNCTION ledger_release_suspense(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_currency text, p_amount bigint, p_account_id text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_moved constant jsonb := ledger_route(p_account_id);
BEGIN
  RETURN coalesce(v_moved, ledger_release_suspense_here(p_shard, p_offset_ms, p_key, p_print, p_currency, p_amount, p_account_id));
END $$;

-- Control tables. Every shard has them (one schema for all), only shard 0's rows are used: the
-- versioned slot map, the shard registry, and the moves (a running move's persisted state).
CREATE TABLE ledger_control (
  only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  cluster_id  uuid NOT NULL DEFAULT gen_random_uuid(),
  map_version bigint NOT NULL CHECK (map_version > 0),
  slot_map    text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_shards (
  shard    integer PRIMARY KEY CHECK (shard >= 0),
  url      text NOT NULL,
  added_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE slot_moves (
  id          bigserial PRIMARY KEY,
  from_slot   integer NOT NULL CHECK (from_slot BETWEEN 0 AND 16383),
  to_slot     integer NOT NULL CHECK (to_slot BETWEEN from_slot AND 16383),
  source      integer NOT NULL,
  target      integer NOT NULL CHECK (target <> source),
  state       text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
  phase       text NOT NULL DEFAULT 'marking' CHECK (phase IN ('marking', 'copying', 'finishing', 'done')),
  moved_ids   integer NOT NULL DEFAULT 0,
  remaining   integer,
  started_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  -- Two running moves never overlap: the second insert fails on this constraint.
  CONSTRAINT one_move_per_slot EXCLUDE USING gist (int4range(from_slot, to_slot, '[]') WITH &&) WHERE (state = 'running')
);

-- Which cluster a shard belongs to (shard 0's ledger_control.cluster_id): a database of another
-- cluster is never registered as a shard of this one.
ALTER TABLE shard_identity ADD COLUMN cluster_id uuid;
