-- 0018: the periodic sweeps read only the rows they need (issue 18: costs that stay flat as
-- the data grows).
--
-- The renewal sweep (DueWithoutJob) looks for open subscriptions whose current period has
-- ended. The end lived only in billing_periods, so the sweep joined every open subscription
-- with its current period and filtered on end_at: it read all of them, a million rows for a
-- million subscriptions, to find the few that are due. current_period_end is a copy of the
-- current period's end_at on the subscription row, and the partial index below holds the
-- open subscriptions by that end: the sweep reads one index range, the due rows only.
--
-- The code keeps it, in the one statement that writes a subscription's current period
-- (store.SaveSubscription, which the batched renewals run too): a trigger cannot, since a
-- new period is inserted after the subscription row points at it (migration 0008's note),
-- so a trigger would have to write the subscription row a second time on every renewal.
-- billing_subscriptions_period_end_check checks the copy at commit, as the foreign key of
-- current_period is checked, so a path that forgets it fails instead of hiding a due
-- subscription from the sweep.
ALTER TABLE billing_subscriptions ADD COLUMN current_period_end timestamptz;

UPDATE billing_subscriptions s SET current_period_end = p.end_at
FROM billing_periods p
WHERE p.subscription_id = s.id AND p.number = s.current_period;

-- The open states the sweep reads (status IN ('active', 'exhausted', 'past_due')); id makes
-- the order total, and current_period is included so that the sweep is an index-only scan.
-- A plain CREATE INDEX, as a migration runs in one transaction: on a large installation
-- build it CONCURRENTLY by hand first under this name (after adding and filling the column);
-- IF NOT EXISTS then skips it.
CREATE INDEX IF NOT EXISTS billing_subscriptions_due_idx ON billing_subscriptions (current_period_end, id)
    INCLUDE (current_period) WHERE status IN ('active', 'exhausted', 'past_due');

-- billing_subscriptions_period_end_check raises unless subscription sub's current_period_end
-- is the end of its current period (NULL without one). Run at commit (a deferred constraint
-- trigger) after a write of the subscription's period or end, or of a period's end.
CREATE FUNCTION billing_subscriptions_period_end_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sub uuid;
BEGIN
    IF TG_TABLE_NAME = 'billing_subscriptions' THEN
        sub := NEW.id;
    ELSE
        sub := NEW.subscription_id;
    END IF;
    IF EXISTS (SELECT 1 FROM billing_subscriptions s
               LEFT JOIN billing_periods p ON p.subscription_id = s.id AND p.number = s.current_period
               WHERE s.id = sub AND s.current_period_end IS DISTINCT FROM p.end_at) THEN
        RAISE EXCEPTION 'billing: subscription %: current_period_end is not the end of its current period', sub
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER billing_subscriptions_period_end_check
    AFTER UPDATE OF current_period, current_period_end ON billing_subscriptions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.current_period IS DISTINCT FROM NEW.current_period OR OLD.current_period_end IS DISTINCT FROM NEW.current_period_end)
    EXECUTE FUNCTION billing_subscriptions_period_end_check();
CREATE CONSTRAINT TRIGGER billing_subscriptions_period_end_check_insert
    AFTER INSERT ON billing_subscriptions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.current_period IS NOT NULL OR NEW.current_period_end IS NOT NULL)
    EXECUTE FUNCTION billing_subscriptions_period_end_check();
CREATE CONSTRAINT TRIGGER billing_periods_end_check
    AFTER UPDATE OF end_at ON billing_periods
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.end_at IS DISTINCT FROM NEW.end_at)
    EXECUTE FUNCTION billing_subscriptions_period_end_check();
