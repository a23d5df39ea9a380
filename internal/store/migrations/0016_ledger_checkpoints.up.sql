-- 0016: balances from checkpoints plus the entries after them (issue 18: "costs that stay
-- flat as the data grows"). Before, a balance summed every entry of the account (41 ms at
-- 100 000 entries, linear). Entries stay append-only; nothing is written on the posting's
-- hot path but one sequence number per entry, so postings still take no lock on an account.
--
-- Entries get a number in the order they were written: billing_ledger_entries.id, from the
-- sequence billing_ledger_entries_id_seq. A checkpoint (account, upto_id S, at T) holds the
-- debits and credits of the account's entries with id <= S and at <= T. It is written by a
-- periodic job (store.InsertLedgerCheckpoints), off the posting path, and only for a
-- stable horizon S: every entry numbered <= S belongs to a transaction that has ended
-- (committed or rolled back), so no entry numbered <= S can ever appear after the
-- checkpoint was computed, and the checkpoint is a fixed sum over a fixed set of rows.
-- Then, for any instant t,
--
--     balance(t) = checkpoint + sum{id > S, at <= T} + sum{T < at <= t} - sum{t < at <= T}
--
-- (the last two terms: one of them is empty), and, when t is at or after every entry up to
-- the horizon (max_at), as for a balance now or the trial balance,
--
--     balance(t) = checkpoint's all_* + sum{id > S, at <= t},
--
-- every term a range scan of an index: the
-- entries written after the horizon (billing_ledger_entries_account_id_idx) and the
-- entries between T and t (billing_ledger_entries_account_idx). A balance at now costs the
-- entries written since the last checkpoint, whatever the size of the ledger.
--
-- How the job knows S is stable (store.LedgerHorizon): numbers are handed out in order,
-- but transactions commit in any order, so the largest number it can see may have a
-- smaller one still in flight. The default billing_ledger_next_entry_id() makes a
-- transaction take its transaction id (xid) BEFORE it draws a number. The job reads the
-- sequence's last value S, then (in a later statement, so a later snapshot) the xmax X of a
-- snapshot: every transaction holding a number <= S drew it before S was read, so it had
-- its xid before that snapshot, so its xid < X. The job then waits until a snapshot's xmin
-- is >= X: every transaction with an xid below X has ended. The sequence has CACHE 1 (the
-- default, stated here because a cache would break this: a session could hand out numbers
-- <= S from its cache later).
--
-- Entries written before this migration keep id NULL (the column is added without a
-- rewrite, and UPDATE is refused): they were all committed before it (ALTER TABLE waits for
-- every transaction on the table), so NULL counts as below every horizon. "id > S" never
-- selects them; the job's first checkpoint of an account sums them through the at index.

CREATE SEQUENCE billing_ledger_entries_id_seq AS bigint CACHE 1;

-- The xid first, then the number: a CASE evaluates its condition first.
CREATE FUNCTION billing_ledger_next_entry_id() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN pg_current_xact_id() IS NULL THEN NULL
                ELSE nextval('billing_ledger_entries_id_seq') END
$$;

ALTER TABLE billing_ledger_entries ADD COLUMN id bigint;
ALTER TABLE billing_ledger_entries ALTER COLUMN id SET DEFAULT billing_ledger_next_entry_id();
ALTER SEQUENCE billing_ledger_entries_id_seq OWNED BY billing_ledger_entries.id;

-- The entries of an account written after a horizon. A plain CREATE INDEX, as a migration
-- runs in one transaction: on a large installation build it CONCURRENTLY under this name
-- before migrating (IF NOT EXISTS then skips it). Entries written before this migration
-- have no id and are not in it.
CREATE INDEX IF NOT EXISTS billing_ledger_entries_account_id_idx
    ON billing_ledger_entries (account, id) INCLUDE (at, side, amount) WHERE id IS NOT NULL;

-- A checkpoint is derived data: deleting one is always safe (balances start from an older
-- one, or from the entries), so DELETE is allowed and the job removes the checkpoints its
-- newer one supersedes. UPDATE is refused: a checkpoint is the sum of a fixed set of
-- entries, and a changed sum could only be wrong.
CREATE TABLE billing_ledger_checkpoints (
    account   text        NOT NULL REFERENCES billing_ledger_accounts (code),
    upto_id   bigint      NOT NULL CHECK (upto_id >= 0),   -- the horizon S: entries with id <= S (or NULL)
    at        timestamptz NOT NULL,                        -- the instant T: entries with at <= T
    debits    bigint      NOT NULL CHECK (debits >= 0),    -- of the entries with id <= S and at <= T
    credits   bigint      NOT NULL CHECK (credits >= 0),
    -- Of the entries with id <= S, whatever their at, and an upper bound of their at: a
    -- balance at t >= max_at (now, or +infinity for the trial balance) is these plus the
    -- entries with id > S and at <= t, one index range.
    all_debits  bigint    NOT NULL CHECK (all_debits >= debits),
    all_credits bigint    NOT NULL CHECK (all_credits >= credits),
    max_at    timestamptz NOT NULL,
    made_at   timestamptz NOT NULL,                        -- when the job wrote it (engine clock)
    PRIMARY KEY (account, upto_id)
);
CREATE TRIGGER billing_ledger_checkpoints_no_update
    BEFORE UPDATE ON billing_ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();
