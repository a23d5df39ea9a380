-- 0008: each usage row carries the access check of its meter, so that the common Consume
-- is one UPDATE of one row found by one index lookup (issue 5's speed target).
--
-- open_until is the end of the row's period while that period is the subscription's
-- current one and the subscription is active, and -infinity otherwise: a counter may be
-- counted at t exactly when t < open_until, which is the access rule of the subscription
-- (TERMS 3.1, 3.3; a used-up hard limit makes the subscription exhausted, which closes
-- every meter of the period). It is a copy, so the database keeps it, not the code:
--   - a usage row is inserted with the value of its period (BEFORE INSERT);
--   - a change of a subscription's status or current period closes the rows of the period
--     that was current (only those can be open) and sets those of the current one (AFTER
--     UPDATE, in that order, so the unique index below never sees two open rows of a meter);
--   - a change of a period's end (an extension) sets the rows of that period.
-- Nothing else changes what open_until is computed from (billing_periods_keep_terms keeps
-- number and subscription; periods and subscriptions are never deleted).
--
-- A row lock orders the hot path against these writers: a Consume that waits for a row
-- changed by a suspension, a renewal or an exhaustion re-checks open_until on the new
-- version (READ COMMITTED re-evaluates the WHERE of an UPDATE) and is refused.

ALTER TABLE billing_usage ADD COLUMN open_until timestamptz NOT NULL DEFAULT '-infinity';

-- billing_usage_open_until is the value open_until must hold for the usage rows of period
-- num of subscription sub. PL/pgSQL, not SQL: its query plan is cached per session, where a
-- SQL function called from a trigger would be planned again on every call.
CREATE FUNCTION billing_usage_open_until(sub uuid, num integer) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce((
        SELECT p.end_at FROM billing_subscriptions s
        JOIN billing_periods p ON p.subscription_id = s.id AND p.number = s.current_period
        WHERE s.id = sub AND s.status = 'active' AND s.current_period = num), '-infinity');
END $$;

CREATE FUNCTION billing_usage_open_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.open_until := billing_usage_open_until(NEW.subscription_id, NEW.period);
    RETURN NEW;
END $$;
CREATE TRIGGER billing_usage_open_on_insert BEFORE INSERT ON billing_usage
    FOR EACH ROW EXECUTE FUNCTION billing_usage_open_on_insert();

CREATE FUNCTION billing_usage_open_on_subscription() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    until timestamptz;
BEGIN
    -- Only the rows of the current period can be open, so only OLD's can need closing.
    IF OLD.current_period IS DISTINCT FROM NEW.current_period AND OLD.current_period IS NOT NULL THEN
        UPDATE billing_usage SET open_until = '-infinity'
        WHERE subscription_id = NEW.id AND period = OLD.current_period AND open_until > '-infinity';
    END IF;
    IF NEW.current_period IS NOT NULL THEN
        until := billing_usage_open_until(NEW.id, NEW.current_period);
        UPDATE billing_usage SET open_until = until
        WHERE subscription_id = NEW.id AND period = NEW.current_period AND open_until IS DISTINCT FROM until;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER billing_usage_open_on_subscription AFTER UPDATE OF status, current_period ON billing_subscriptions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.current_period IS DISTINCT FROM NEW.current_period)
    EXECUTE FUNCTION billing_usage_open_on_subscription();

CREATE FUNCTION billing_usage_open_on_period() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    until timestamptz := billing_usage_open_until(NEW.subscription_id, NEW.number);
BEGIN
    UPDATE billing_usage SET open_until = until
    WHERE subscription_id = NEW.subscription_id AND period = NEW.number AND open_until IS DISTINCT FROM until;
    RETURN NULL;
END $$;
CREATE TRIGGER billing_usage_open_on_period AFTER UPDATE OF end_at ON billing_periods
    FOR EACH ROW WHEN (OLD.end_at IS DISTINCT FROM NEW.end_at)
    EXECUTE FUNCTION billing_usage_open_on_period();

-- Existing rows, then the index of the hot path: at most one open row per meter of a
-- subscription, found without reading its other periods. Only the current period of an
-- active subscription can be open; every other row keeps the default, so the backfill
-- rewrites those rows only, not the whole usage history.
UPDATE billing_usage u SET open_until = billing_usage_open_until(u.subscription_id, u.period)
FROM billing_subscriptions s
WHERE s.id = u.subscription_id AND s.status = 'active' AND u.period = s.current_period;
CREATE UNIQUE INDEX billing_usage_open_idx ON billing_usage (subscription_id, meter)
    WHERE open_until > '-infinity';
