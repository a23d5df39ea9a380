-- 0010: a first payment the customer confirms on the provider's page, and 54-FZ receipts
-- that repeat on a refund the VAT the charge was made under.
--
-- vat_code is the VAT code (payment.VATCode) of the charge's receipt, fixed when the
-- attempt is made: a refund's return receipt repeats it, whatever Config.VAT is by then
-- (a 2026 refund of a 2025 payment repeats the 2025 rate). Empty on attempts made before
-- this migration: their refunds use Config.VAT, as before.
--
-- return_url marks a checkout on the provider's page (Engine.StartCheckout): the customer
-- is sent to confirmation_url, the provider's answer, and comes back to return_url.
-- saved_method is the payment method the provider saved with a succeeded checkout; the
-- engine binds it to the customer as the token for renewals.
ALTER TABLE billing_payment_attempts
    ADD COLUMN vat_code         text NOT NULL DEFAULT '',
    ADD COLUMN return_url       text NOT NULL DEFAULT '',
    ADD COLUMN confirmation_url text NOT NULL DEFAULT '',
    ADD COLUMN saved_method     text NOT NULL DEFAULT '';
