-- 0003: the tariff catalog. Versions are append-only: the database refuses to change one.

-- billing_refuse_change is the trigger of every append-only table.
CREATE FUNCTION billing_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'billing: % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE TABLE billing_tariffs (
    code        text        PRIMARY KEY,
    name        text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('active', 'retired')),
    retired_at  timestamptz,
    created_at  timestamptz NOT NULL,
    CHECK ((status = 'retired') = (retired_at IS NOT NULL))
);

CREATE TABLE billing_tariff_versions (
    code          text        NOT NULL REFERENCES billing_tariffs (code),
    number        integer     NOT NULL CHECK (number >= 1),
    name          text        NOT NULL,
    price_minor   bigint      NOT NULL CHECK (price_minor >= 0),
    currency      text        NOT NULL,
    period_count  integer     NOT NULL CHECK (period_count >= 1),
    period_unit   text        NOT NULL CHECK (period_unit IN ('day', 'week', 'month', 'year')),
    limits        jsonb       NOT NULL,
    options       jsonb       NOT NULL,
    effective_at  timestamptz NOT NULL,
    published_at  timestamptz NOT NULL,
    PRIMARY KEY (code, number)
);

CREATE TRIGGER billing_tariff_versions_append_only
    BEFORE UPDATE OR DELETE ON billing_tariff_versions
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();
