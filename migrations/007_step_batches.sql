-- Several ledger steps of one shard in one transaction, so one durable commit (client-side group
-- commit, src/ledger/step-batcher.ts). p_steps is an array of {"fn": name, "args": [...]}, the args
-- positional as the step function takes them (numbers and digit strings, null for NULL). Each step
-- runs in the order given and the answer is the array of the step functions' own answers in that
-- order, unchanged: a refusal or a "moved" answer is one element, and the other steps still apply.
-- A step that raises (a fault, a lock or statement timeout, a deadlock) aborts the whole batch and
-- nothing of it commits; the caller then runs each step again alone.
--
-- Only the step functions below can be called: the name picks a branch of the CASE, which calls the
-- function with its typed arguments; nothing is built into SQL from the input.
--
-- ledger_route records the step's account in the transaction-local setting ledger.account (the
-- default of idempotency_keys.account_id); a step without an account (a suspense payout out of the
-- ledger) must not inherit the previous step's, so it is cleared before every step.
CREATE FUNCTION ledger_batch(p_steps jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  s jsonb;
  a jsonb;
  v_fn text;
  v_arity integer;
  v_answer jsonb;
  v_answers jsonb := '[]'::jsonb;
BEGIN
  IF jsonb_typeof(p_steps) IS DISTINCT FROM 'array' THEN
    RAISE EXCEPTION 'ledger_batch takes an array of steps, not %', coalesce(jsonb_typeof(p_steps), 'NULL');
  END IF;
  FOR s IN SELECT e FROM jsonb_array_elements(p_steps) WITH ORDINALITY AS x(e, n) ORDER BY n LOOP
    v_fn := s->>'fn';
    a := s->'args';
    v_arity := CASE v_fn
      WHEN 'ledger_reserve' THEN 10
      WHEN 'ledger_post' THEN 7
      WHEN 'ledger_void' THEN 8
      WHEN 'ledger_refund' THEN 7
      WHEN 'ledger_move' THEN 8
      WHEN 'ledger_release_suspense' THEN 7
    END;
    IF v_arity IS NULL THEN
      RAISE EXCEPTION 'ledger_batch: % is not a step function', coalesce(v_fn, 'NULL');
    END IF;
    IF jsonb_typeof(a) IS DISTINCT FROM 'array' OR jsonb_array_length(a) <> v_arity THEN
      RAISE EXCEPTION 'ledger_batch: % takes % arguments', v_fn, v_arity;
    END IF;
    PERFORM set_config('ledger.account', '', true);
    CASE v_fn
      WHEN 'ledger_reserve' THEN
        v_answer := ledger_reserve((a->>0)::integer, (a->>1)::bigint, a->>2, a->>3, a->>4, a->>5, a->>6, (a->>7)::bigint, a->>8, (a->>9)::bigint);
      WHEN 'ledger_post' THEN
        v_answer := ledger_post((a->>0)::integer, (a->>1)::bigint, a->>2, a->>3, a->>4, a->>5, a->>6);
      WHEN 'ledger_void' THEN
        v_answer := ledger_void((a->>0)::integer, (a->>1)::bigint, a->>2, a->>3, a->>4, a->>5, a->>6, a->>7);
      WHEN 'ledger_refund' THEN
        v_answer := ledger_refund((a->>0)::integer, (a->>1)::bigint, a->>2, a->>3, a->>4, a->>5, a->>6);
      WHEN 'ledger_move' THEN
        v_answer := ledger_move((a->>0)::integer, (a->>1)::bigint, a->>2, a->>3, a->>4, a->>5, (a->>6)::bigint, a->>7);
      WHEN 'ledger_release_suspense' THEN
        v_answer := ledger_release_suspense((a->>0)::integer, (a->>1)::bigint, a->>2, a->>3, a->>4, (a->>5)::bigint, a->>6);
    END CASE;
    v_answers := v_answers || jsonb_build_array(v_answer);
  END LOOP;
  RETURN v_answers;
END $$;
