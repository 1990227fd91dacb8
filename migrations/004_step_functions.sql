-- Each ledger step is one function call, so one round trip: reserve, post, void, refund, deposit,
-- withdraw and suspense release. The function is the whole transaction the application used to drive
-- statement by statement: claim the idempotency key, lock (key, then hold, then account, as before),
-- check, write the hold / journal / event rows, record the outcome under the key and return it.
--
-- Every step function returns jsonb, one of
--   {"replayed": false|true, "outcome": {...}}                                  applied now, or earlier
--   {"replayed": false|true, "refusal": {"code": ..., "message": ..., "details": {...}}}
-- A business refusal is an answer, never an exception: it is recorded under the key (sticky, state
-- 'refused') and returned. Only real faults raise (lock and statement timeouts, a lost connection,
-- a broken invariant), and then nothing of the step remains, not even its key.
--
-- Outcomes are stored in the same shape as the application's views (camelCase, amounts as digit
-- strings, times as ISO 8601 UTC with milliseconds), so a key applied before this migration replays
-- the same as one applied after.

-- The database's time for this transaction: now() plus the clock offset tests use to expire holds
-- without waiting (0 in production); millisecond precision, as stored before.
CREATE FUNCTION ledger_now(p_offset_ms bigint) RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT date_trunc('milliseconds', now() + p_offset_ms * interval '1 millisecond')
$$;

-- A time as JavaScript's Date#toISOString writes it.
CREATE FUNCTION ledger_iso(p_at timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

CREATE FUNCTION ledger_refusal(p_code text, p_message text, p_details jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('code', p_code, 'message', p_message, 'details', p_details)
$$;

CREATE FUNCTION ledger_hold_view(h holds, p_shard integer) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'key', h.key, 'transferId', h.transfer_id, 'accountId', h.account_id, 'shard', p_shard, 'side', h.side,
    'amount', h.amount::text, 'currency', h.currency, 'state', h.state,
    'expiresAt', ledger_iso(h.expires_at), 'createdAt', ledger_iso(h.created_at),
    'resolvedAt', ledger_iso(h.resolved_at), 'resolvedBy', h.resolved_by)
$$;

-- The legs of one entry, in the order written. Entry ids of different key namespaces may be equal
-- strings, so legs are told apart by their hold (none for deposits, withdrawals and releases).
CREATE FUNCTION ledger_entry_postings(p_entry_id text, p_hold_key text, p_shard integer) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object(
    'entryId', j.entry_id, 'transferId', j.transfer_id, 'holdKey', j.hold_key, 'accountId', j.account_id,
    'shard', p_shard, 'amount', j.amount::text, 'currency', j.currency, 'kind', j.kind,
    'createdAt', ledger_iso(j.created_at)) ORDER BY j.id), '[]'::jsonb)
  FROM journal j WHERE j.entry_id = p_entry_id AND j.hold_key IS NOT DISTINCT FROM p_hold_key
$$;

-- An event's payload with its side and, for a transfer's events, its place in the transfer: the same
-- order on every shard, so a receiver can order what it got out of order (reserve debit, reserve
-- credit, post debit, post credit, release credit, release debit, refund).
CREATE FUNCTION ledger_event_payload(p_type text, p_side text, p_payload jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT p_payload || jsonb_strip_nulls(jsonb_build_object('side', p_side, 'sequence', CASE p_type
    WHEN 'transfer.debit_reserved' THEN 1
    WHEN 'transfer.credit_reserved' THEN 2
    WHEN 'transfer.debit_posted' THEN 3
    WHEN 'transfer.credit_posted' THEN 4
    WHEN 'transfer.hold_voided' THEN CASE WHEN p_side = 'credit' THEN 5 ELSE 6 END
    WHEN 'transfer.hold_expired' THEN CASE WHEN p_side = 'credit' THEN 5 ELSE 6 END
    WHEN 'transfer.debit_refunded' THEN 7 END))
$$;

CREATE FUNCTION ledger_append_event(p_aggregate text, p_id text, p_type text, p_side text, p_payload jsonb) RETURNS void LANGUAGE sql AS $$
  INSERT INTO ledger_events (aggregatetype, aggregateid, type, payload)
  VALUES (p_aggregate, p_id, p_type, ledger_event_payload(p_type, p_side, p_payload))
$$;

-- A hold's event payload.
CREATE FUNCTION ledger_hold_payload(h holds, p_key text, p_at timestamptz) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('transferId', h.transfer_id, 'holdKey', h.key, 'account', h.account_id,
    'amount', h.amount::text, 'currency', h.currency, 'key', p_key, 'at', ledger_iso(p_at))
$$;

-- The idempotency barrier. A key is claimed by a unique-key insert in the step's own transaction,
-- never check-then-act: a concurrent duplicate waits on the unique index until the first transaction
-- ends, then reads its committed record. Returns NULL when claimed now, else the existing record.
CREATE FUNCTION ledger_claim(p_scope text, p_key text, p_operation text, p_print text) RETURNS idempotency_keys LANGUAGE plpgsql AS $$
DECLARE
  r idempotency_keys;
BEGIN
  INSERT INTO idempotency_keys (scope, key, operation, fingerprint, state, outcome)
  VALUES (p_scope, p_key, p_operation, p_print, 'done', '{}') ON CONFLICT (scope, key) DO NOTHING;
  IF FOUND THEN
    RETURN NULL;
  END IF;
  SELECT * INTO r FROM idempotency_keys WHERE scope = p_scope AND key = p_key;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'idempotency key % conflicted but cannot be read', p_key;
  END IF;
  RETURN r;
END $$;

-- What an earlier record under the same key answers: its outcome again, its refusal again (a retry
-- never turns a refusal into a payment), FENCED under a tombstone, or a reused key.
CREATE FUNCTION ledger_replay(r idempotency_keys, p_operation text, p_print text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN r.state = 'cancelled' THEN jsonb_build_object('replayed', true, 'refusal', ledger_refusal('FENCED',
      format('key %s was cancelled by a compensation before this %s arrived; nothing was done', r.key, p_operation),
      jsonb_build_object('key', r.key)))
    WHEN r.operation <> p_operation OR r.fingerprint <> p_print THEN jsonb_build_object('replayed', true, 'refusal', ledger_refusal('IDEMPOTENCY_KEY_REUSED',
      format('idempotency key %s was first used for a different %s', r.key,
        CASE WHEN r.operation = p_operation THEN 'request' ELSE format('operation (%s)', r.operation) END),
      jsonb_build_object('key', r.key)))
    WHEN r.state = 'refused' THEN jsonb_build_object('replayed', true, 'refusal', r.outcome)
    ELSE jsonb_build_object('replayed', true, 'outcome', r.outcome)
  END
$$;

-- Claims the step's key; NULL when claimed now (go on), else the earlier record's answer (return it).
CREATE FUNCTION ledger_begin(p_scope text, p_key text, p_operation text, p_print text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  r idempotency_keys := ledger_claim(p_scope, p_key, p_operation, p_print);
BEGIN
  IF r.key IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN ledger_replay(r, p_operation, p_print);
END $$;

-- Records the step's outcome under its key and returns it.
CREATE FUNCTION ledger_done(p_scope text, p_key text, p_outcome jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  UPDATE idempotency_keys SET state = 'done', outcome = p_outcome WHERE scope = p_scope AND key = p_key;
  RETURN jsonb_build_object('replayed', false, 'outcome', p_outcome);
END $$;

-- Records a refusal under the step's key (sticky) and returns it.
CREATE FUNCTION ledger_refused(p_scope text, p_key text, p_refusal jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  UPDATE idempotency_keys SET state = 'refused', outcome = p_refusal WHERE scope = p_scope AND key = p_key;
  RETURN jsonb_build_object('replayed', false, 'refusal', p_refusal);
END $$;

CREATE FUNCTION ledger_overflow_refusal() RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT ledger_refusal('INVALID_AMOUNT', 'the resulting balance would not fit in 64 bits')
$$;

-- Why a customer account (locked by the caller; all NULL when missing) may not take a new
-- reservation or movement in a currency, or NULL when it may.
CREATE FUNCTION ledger_account_refusal(a accounts, p_account_id text, p_currency text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN a.id IS NULL THEN ledger_refusal('ACCOUNT_NOT_FOUND', format('account %s does not exist', p_account_id), jsonb_build_object('account', p_account_id))
    WHEN a.status = 'frozen' THEN ledger_refusal('ACCOUNT_FROZEN', format('account %s is frozen', a.id), jsonb_build_object('account', a.id))
    WHEN a.status = 'closed' THEN ledger_refusal('ACCOUNT_CLOSED', format('account %s is closed', a.id), jsonb_build_object('account', a.id))
    WHEN a.currency::text <> p_currency THEN ledger_refusal('CURRENCY_MISMATCH', format('account %s holds %s, not %s', a.id, a.currency, p_currency),
      jsonb_build_object('account', a.id, 'accountCurrency', a.currency, 'currency', p_currency))
  END
$$;

-- A caller naming the wrong account or transfer must never act on someone else's hold.
CREATE FUNCTION ledger_hold_mismatch(h holds, p_hold_key text, p_account_id text, p_transfer_id text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN h.key IS NULL THEN NULL
    WHEN p_account_id IS NOT NULL AND h.account_id <> p_account_id THEN ledger_refusal('HOLD_NOT_FOUND',
      format('hold %s is not on account %s', p_hold_key, p_account_id), jsonb_build_object('hold', p_hold_key, 'account', p_account_id))
    WHEN p_transfer_id IS NOT NULL AND h.transfer_id <> p_transfer_id THEN ledger_refusal('HOLD_NOT_FOUND',
      format('hold %s does not belong to transfer %s', p_hold_key, p_transfer_id), jsonb_build_object('hold', p_hold_key, 'transfer', p_transfer_id))
  END
$$;

CREATE FUNCTION ledger_hold_missing(p_hold_key text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT ledger_refusal('HOLD_NOT_FOUND', format('hold %s does not exist', p_hold_key), jsonb_build_object('hold', p_hold_key))
$$;

CREATE FUNCTION ledger_hold_resolved(h holds, p_action text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT ledger_refusal(
    CASE h.state WHEN 'posted' THEN 'HOLD_POSTED' WHEN 'voided' THEN 'HOLD_VOIDED' WHEN 'expired' THEN 'HOLD_EXPIRED' ELSE 'INVALID_INPUT' END,
    format('cannot %s hold %s: it is already %s', p_action, h.key, h.state), jsonb_build_object('hold', h.key, 'state', h.state))
$$;

-- Locks a customer account row for the rest of the transaction; the row, or all NULL if there is none.
CREATE FUNCTION ledger_lock_account(p_account_id text) RETURNS accounts LANGUAGE sql AS $$
  SELECT * FROM accounts WHERE id = p_account_id AND kind = 'customer' FOR UPDATE
$$;

-- Compare-and-set on a hold's state (only a pending hold moves, and only once), releasing what it
-- held on its account (locked by the caller). Returns the resolved hold.
CREATE FUNCTION ledger_resolve_hold(h holds, p_state text, p_by text, p_at timestamptz) RETURNS holds LANGUAGE plpgsql AS $$
DECLARE
  resolved holds;
BEGIN
  UPDATE holds SET state = p_state, resolved_at = p_at, resolved_by = p_by
  WHERE key = h.key AND state = 'pending' RETURNING * INTO resolved;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hold % was not pending when resolved', h.key;
  END IF;
  IF h.side = 'debit' THEN
    UPDATE accounts SET pending_debits = pending_debits - h.amount, updated_at = p_at WHERE id = h.account_id;
  ELSE
    UPDATE accounts SET pending_credits = pending_credits - h.amount, updated_at = p_at WHERE id = h.account_id;
  END IF;
  RETURN resolved;
END $$;

-- Two-phase reservation. A debit hold raises pending debits (so available falls, checked by the
-- available_not_negative constraint); a credit hold raises pending credits. The hold's key is the
-- step's idempotency key.
CREATE FUNCTION ledger_reserve(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_transfer_id text, p_account_id text,
  p_side text, p_amount bigint, p_currency text, p_ttl_ms bigint
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_operation constant text := 'reserve-' || p_side;
  v_at constant timestamptz := ledger_now(p_offset_ms);
  v_answer jsonb;
  v_constraint text;
  a accounts;
  h holds;
BEGIN
  v_answer := ledger_begin('transfer', p_key, v_operation, p_print);
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  a := ledger_lock_account(p_account_id);
  v_answer := ledger_account_refusal(a, p_account_id, p_currency);
  IF v_answer IS NOT NULL THEN
    RETURN ledger_refused('transfer', p_key, v_answer);
  END IF;
  BEGIN
    IF p_side = 'debit' THEN
      UPDATE accounts SET pending_debits = pending_debits + p_amount, updated_at = v_at WHERE id = p_account_id;
    ELSE
      UPDATE accounts SET pending_credits = pending_credits + p_amount, updated_at = v_at WHERE id = p_account_id;
    END IF;
  EXCEPTION
    WHEN check_violation THEN
      GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
      IF v_constraint IS DISTINCT FROM 'available_not_negative' THEN
        RAISE;
      END IF;
      RETURN ledger_refused('transfer', p_key, ledger_refusal('INSUFFICIENT_FUNDS',
        format('account %s has insufficient available funds for %s minor units', p_account_id, p_amount),
        jsonb_build_object('account', p_account_id, 'requested', p_amount::text)));
    WHEN numeric_value_out_of_range THEN
      RETURN ledger_refused('transfer', p_key, ledger_overflow_refusal());
  END;
  INSERT INTO holds (key, transfer_id, account_id, side, amount, currency, expires_at, created_at)
  VALUES (p_key, p_transfer_id, p_account_id, p_side, p_amount, p_currency, v_at + p_ttl_ms * interval '1 millisecond', v_at)
  RETURNING * INTO h;
  PERFORM ledger_append_event('transfer', p_transfer_id, format('transfer.%s_reserved', p_side), p_side,
    ledger_hold_payload(h, p_key, v_at) || jsonb_build_object('expiresAt', ledger_iso(h.expires_at)));
  RETURN ledger_done('transfer', p_key, jsonb_build_object('hold', ledger_hold_view(h, p_shard)));
END $$;

-- Posts a pending hold through the shard's clearing account: a debit goes account → clearing, a
-- credit clearing → account. A hold found past its expiry (not yet swept) is expired here, and that
-- is kept, and the post refused HOLD_EXPIRED.
CREATE FUNCTION ledger_post(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_hold_key text, p_account_id text, p_transfer_id text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_at constant timestamptz := ledger_now(p_offset_ms);
  v_answer jsonb;
  v_signed bigint;
  h holds;
BEGIN
  v_answer := ledger_begin('transfer', p_key, 'post', p_print);
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  SELECT * INTO h FROM holds WHERE key = p_hold_key FOR UPDATE;
  v_answer := coalesce(ledger_hold_mismatch(h, p_hold_key, p_account_id, p_transfer_id),
    CASE WHEN h.key IS NULL THEN ledger_hold_missing(p_hold_key) WHEN h.state <> 'pending' THEN ledger_hold_resolved(h, 'post') END);
  IF v_answer IS NOT NULL THEN
    RETURN ledger_refused('transfer', p_key, v_answer);
  END IF;
  IF h.expires_at <= v_at THEN
    PERFORM ledger_resolve_hold(h, 'expired', p_key, v_at);
    PERFORM ledger_append_event('transfer', h.transfer_id, 'transfer.hold_expired', h.side, ledger_hold_payload(h, p_key, v_at));
    RETURN ledger_refused('transfer', p_key, ledger_refusal('HOLD_EXPIRED',
      format('hold %s expired at %s', h.key, ledger_iso(h.expires_at)), jsonb_build_object('hold', h.key)));
  END IF;
  IF (ledger_lock_account(h.account_id)).id IS NULL THEN
    RETURN ledger_refused('transfer', p_key, ledger_account_refusal(NULL, h.account_id, h.currency));
  END IF;
  v_signed := CASE WHEN h.side = 'debit' THEN -h.amount ELSE h.amount END;
  BEGIN
    h := ledger_resolve_hold(h, 'posted', p_key, v_at);
    UPDATE accounts SET posted = posted + v_signed, updated_at = v_at WHERE id = h.account_id;
    INSERT INTO journal (entry_id, transfer_id, hold_key, account_id, amount, currency, kind, created_at)
    VALUES (p_key, h.transfer_id, h.key, h.account_id, v_signed, h.currency, 'transfer_' || h.side, v_at),
           (p_key, h.transfer_id, h.key, 'sys:clearing:' || h.currency, -v_signed, h.currency, 'transfer_' || h.side, v_at);
    PERFORM ledger_append_event('transfer', h.transfer_id, format('transfer.%s_posted', h.side), h.side, ledger_hold_payload(h, p_key, v_at));
  EXCEPTION
    WHEN numeric_value_out_of_range THEN
      RETURN ledger_refused('transfer', p_key, ledger_overflow_refusal());
  END;
  RETURN ledger_done('transfer', p_key, jsonb_build_object('hold', ledger_hold_view(h, p_shard), 'postings', ledger_entry_postings(p_key, h.key, p_shard)));
END $$;

-- Voids a reservation. Safe in every order: with no reservation yet it leaves a tombstone under the
-- reservation's key (a null compensation), so a reservation arriving later is FENCED and does nothing.
-- A tombstone fences a reservation of the caller's own transfer only.
CREATE FUNCTION ledger_void(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_hold_key text, p_account_id text, p_transfer_id text,
  p_tombstone_print text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_at constant timestamptz := ledger_now(p_offset_ms);
  v_answer jsonb;
  h holds;
  tombstone idempotency_keys;
BEGIN
  v_answer := ledger_begin('transfer', p_key, 'void', p_print);
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  SELECT * INTO h FROM holds WHERE key = p_hold_key FOR UPDATE;
  v_answer := ledger_hold_mismatch(h, p_hold_key, p_account_id, p_transfer_id);
  IF v_answer IS NOT NULL THEN
    RETURN ledger_refused('transfer', p_key, v_answer);
  END IF;
  IF h.key IS NULL THEN
    IF p_transfer_id IS NOT NULL AND NOT starts_with(p_hold_key, p_transfer_id || ':') THEN
      RETURN ledger_refused('transfer', p_key, ledger_refusal('HOLD_NOT_FOUND',
        format('hold %s is not a hold of transfer %s', p_hold_key, p_transfer_id), jsonb_build_object('hold', p_hold_key)));
    END IF;
    tombstone := ledger_claim('transfer', p_hold_key, 'tombstone', p_tombstone_print);
    IF tombstone.key IS NULL THEN
      UPDATE idempotency_keys SET state = 'cancelled', outcome = jsonb_build_object('cancelledBy', p_key, 'at', ledger_iso(v_at))
      WHERE scope = 'transfer' AND key = p_hold_key;
      RETURN ledger_done('transfer', p_key, jsonb_build_object('outcome', 'null_compensation'));
    END IF;
    -- The reservation committed while we waited on its key: it either made a hold or was refused.
    SELECT * INTO h FROM holds WHERE key = p_hold_key FOR UPDATE;
    v_answer := ledger_hold_mismatch(h, p_hold_key, p_account_id, p_transfer_id);
    IF v_answer IS NOT NULL THEN
      RETURN ledger_refused('transfer', p_key, v_answer);
    END IF;
    IF h.key IS NULL THEN
      RETURN ledger_done('transfer', p_key, jsonb_build_object('outcome',
        CASE WHEN tombstone.state = 'cancelled' THEN 'null_compensation' ELSE 'nothing_reserved' END));
    END IF;
  END IF;
  IF h.state = 'posted' THEN
    RETURN ledger_refused('transfer', p_key, ledger_hold_resolved(h, 'void'));
  END IF;
  IF h.state IN ('voided', 'expired') THEN
    RETURN ledger_done('transfer', p_key, jsonb_build_object('outcome', 'already_' || h.state, 'hold', ledger_hold_view(h, p_shard)));
  END IF;
  IF (ledger_lock_account(h.account_id)).id IS NULL THEN
    RETURN ledger_refused('transfer', p_key, ledger_account_refusal(NULL, h.account_id, h.currency));
  END IF;
  h := ledger_resolve_hold(h, 'voided', p_key, v_at);
  PERFORM ledger_append_event('transfer', h.transfer_id, 'transfer.hold_voided', h.side, ledger_hold_payload(h, p_key, v_at));
  RETURN ledger_done('transfer', p_key, jsonb_build_object('outcome', 'voided', 'hold', ledger_hold_view(h, p_shard)));
END $$;

-- The way back from a posted debit: a new balancing entry (clearing → account), never an edit, at
-- most once per hold. On a frozen account it lands as usual; when the account was closed after the
-- debit was posted it lands in the shard's suspense account for the currency.
CREATE FUNCTION ledger_refund(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_hold_key text, p_account_id text, p_transfer_id text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_at constant timestamptz := ledger_now(p_offset_ms);
  v_answer jsonb;
  v_payee text;
  v_suspense boolean;
  h holds;
  a accounts;
BEGIN
  v_answer := ledger_begin('transfer', p_key, 'refund', p_print);
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  SELECT * INTO h FROM holds WHERE key = p_hold_key FOR UPDATE;
  v_answer := coalesce(ledger_hold_mismatch(h, p_hold_key, p_account_id, p_transfer_id), CASE
    WHEN h.key IS NULL THEN ledger_hold_missing(p_hold_key)
    WHEN h.side <> 'debit' OR h.state <> 'posted' THEN ledger_refusal('HOLD_NOT_POSTED',
      format('only a posted debit hold can be refunded (%s is a %s %s)', h.key, h.state, h.side), jsonb_build_object('hold', h.key))
    WHEN EXISTS (SELECT 1 FROM journal WHERE hold_key = h.key AND kind = 'refund') THEN ledger_refusal('ALREADY_REFUNDED',
      format('hold %s was already refunded', h.key), jsonb_build_object('hold', h.key))
  END);
  IF v_answer IS NOT NULL THEN
    RETURN ledger_refused('transfer', p_key, v_answer);
  END IF;
  a := ledger_lock_account(h.account_id);
  IF a.id IS NULL THEN
    RETURN ledger_refused('transfer', p_key, ledger_account_refusal(a, h.account_id, h.currency));
  END IF;
  v_suspense := a.status = 'closed';
  v_payee := CASE WHEN v_suspense THEN 'sys:suspense:' || h.currency ELSE h.account_id END;
  BEGIN
    IF v_suspense THEN
      -- The shard's system accounts for the currency (suspense came after the first release).
      INSERT INTO accounts (id, kind, currency, currency_exponent)
      VALUES ('sys:external:' || h.currency, 'external', h.currency, a.currency_exponent),
             ('sys:clearing:' || h.currency, 'clearing', h.currency, a.currency_exponent),
             ('sys:suspense:' || h.currency, 'suspense', h.currency, a.currency_exponent)
      ON CONFLICT (id) DO NOTHING;
    ELSE
      UPDATE accounts SET posted = posted + h.amount, updated_at = v_at WHERE id = h.account_id;
    END IF;
    INSERT INTO journal (entry_id, transfer_id, hold_key, account_id, amount, currency, kind, created_at)
    VALUES (p_key, h.transfer_id, h.key, v_payee, h.amount, h.currency, 'refund', v_at),
           (p_key, h.transfer_id, h.key, 'sys:clearing:' || h.currency, -h.amount, h.currency, 'refund', v_at);
    PERFORM ledger_append_event('transfer', h.transfer_id, 'transfer.debit_refunded', 'debit',
      ledger_hold_payload(h, p_key, v_at) || CASE WHEN v_suspense THEN '{"suspense": true}'::jsonb ELSE '{}' END);
  EXCEPTION
    WHEN numeric_value_out_of_range THEN
      RETURN ledger_refused('transfer', p_key, ledger_overflow_refusal());
  END;
  RETURN ledger_done('transfer', p_key, jsonb_build_object('postings', ledger_entry_postings(p_key, h.key, p_shard))
    || CASE WHEN v_suspense THEN '{"suspense": true}'::jsonb ELSE '{}' END);
END $$;

-- Money entering (deposit: external → account) or leaving (withdrawal: account → external), one
-- balanced entry; the available_not_negative constraint decides whether a withdrawal is covered.
CREATE FUNCTION ledger_move(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_kind text, p_account_id text, p_amount bigint, p_currency text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_at constant timestamptz := ledger_now(p_offset_ms);
  v_signed constant bigint := CASE WHEN p_kind = 'deposit' THEN p_amount ELSE -p_amount END;
  v_answer jsonb;
  v_constraint text;
  a accounts;
BEGIN
  IF p_kind NOT IN ('deposit', 'withdrawal') THEN
    RAISE EXCEPTION 'unknown movement %', p_kind;
  END IF;
  v_answer := ledger_begin('movement', p_key, p_kind, p_print);
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  a := ledger_lock_account(p_account_id);
  v_answer := ledger_account_refusal(a, p_account_id, p_currency);
  IF v_answer IS NOT NULL THEN
    RETURN ledger_refused('movement', p_key, v_answer);
  END IF;
  BEGIN
    UPDATE accounts SET posted = posted + v_signed, updated_at = v_at WHERE id = p_account_id;
  EXCEPTION
    WHEN check_violation THEN
      GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
      IF v_constraint IS DISTINCT FROM 'available_not_negative' THEN
        RAISE;
      END IF;
      RETURN ledger_refused('movement', p_key, ledger_refusal('INSUFFICIENT_FUNDS',
        format('account %s cannot cover %s minor units', p_account_id, p_amount), jsonb_build_object('account', p_account_id)));
    WHEN numeric_value_out_of_range THEN
      RETURN ledger_refused('movement', p_key, ledger_overflow_refusal());
  END;
  INSERT INTO journal (entry_id, transfer_id, hold_key, account_id, amount, currency, kind, created_at)
  VALUES (p_key, NULL, NULL, p_account_id, v_signed, p_currency, p_kind, v_at),
         (p_key, NULL, NULL, 'sys:external:' || p_currency, -v_signed, p_currency, p_kind, v_at);
  PERFORM ledger_append_event('account', p_account_id, CASE WHEN p_kind = 'deposit' THEN 'account.deposited' ELSE 'account.withdrawn' END, NULL,
    jsonb_build_object('account', p_account_id, 'amount', p_amount::text, 'currency', p_currency, 'key', p_key, 'at', ledger_iso(v_at)));
  RETURN ledger_done('movement', p_key, jsonb_build_object('postings', ledger_entry_postings(p_key, NULL, p_shard)));
END $$;

-- Pays money out of suspense: into an open account on this shard, or out of the ledger (external)
-- when it was settled another way; never more than suspense holds (checked under the suspense
-- account's lock, which refunds into it take too).
CREATE FUNCTION ledger_release_suspense(
  p_shard integer, p_offset_ms bigint, p_key text, p_print text, p_currency text, p_amount bigint, p_account_id text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_at constant timestamptz := ledger_now(p_offset_ms);
  v_suspense constant text := 'sys:suspense:' || p_currency;
  -- "/" never appears in a key, so this entry id cannot equal a deposit's or a transfer step's.
  v_entry constant text := 'suspense/' || p_key;
  v_answer jsonb;
  v_locked boolean;
  v_held numeric;
  v_payee text := 'sys:external:' || p_currency;
  a accounts;
BEGIN
  v_answer := ledger_begin('suspense', p_key, 'suspense_release', p_print);
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  PERFORM 1 FROM accounts WHERE id = v_suspense FOR UPDATE;
  v_locked := FOUND;
  SELECT coalesce(sum(amount), 0) INTO v_held FROM journal WHERE account_id = v_suspense;
  IF NOT v_locked OR v_held < p_amount THEN
    RETURN ledger_refused('suspense', p_key, ledger_refusal('INSUFFICIENT_FUNDS',
      format('suspense %s on shard %s holds %s minor units, less than %s', p_currency, p_shard, v_held, p_amount),
      jsonb_build_object('shard', p_shard::text, 'held', v_held::text)));
  END IF;
  IF p_account_id IS NOT NULL THEN
    a := ledger_lock_account(p_account_id);
    v_answer := ledger_account_refusal(a, p_account_id, p_currency);
    IF v_answer IS NOT NULL THEN
      RETURN ledger_refused('suspense', p_key, v_answer);
    END IF;
    v_payee := a.id;
    BEGIN
      UPDATE accounts SET posted = posted + p_amount, updated_at = v_at WHERE id = a.id;
    EXCEPTION
      WHEN numeric_value_out_of_range THEN
        RETURN ledger_refused('suspense', p_key, ledger_overflow_refusal());
    END;
  END IF;
  INSERT INTO journal (entry_id, transfer_id, hold_key, account_id, amount, currency, kind, created_at)
  VALUES (v_entry, NULL, NULL, v_payee, p_amount, p_currency, 'suspense_release', v_at),
         (v_entry, NULL, NULL, v_suspense, -p_amount, p_currency, 'suspense_release', v_at);
  PERFORM ledger_append_event('account', v_payee, 'suspense.released', NULL,
    jsonb_build_object('account', v_payee, 'amount', p_amount::text, 'currency', p_currency, 'key', p_key, 'shard', p_shard, 'at', ledger_iso(v_at)));
  RETURN ledger_done('suspense', p_key, jsonb_build_object('postings', ledger_entry_postings(v_entry, NULL, p_shard)));
END $$;
