-- Fix of 001: a refund entry has two legs (the customer account and the shard's clearing account),
-- both with the hold's key and kind 'refund', so a unique index on hold_key alone refused the second
-- leg of every refund. One refund leg per hold and account still allows at most one refund per hold.
DROP INDEX journal_one_refund_per_hold;
CREATE UNIQUE INDEX journal_one_refund_per_hold ON journal (hold_key, account_id) WHERE kind = 'refund';
