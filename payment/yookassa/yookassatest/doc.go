// Package yookassatest is an in-process simulator of the YooKassa API v3 (an httptest
// server), for testing the payment/yookassa adapter and anything else that speaks the API
// over HTTP. It follows the documented wire API, not any adapter's idea of it, so that an
// adapter's mistakes show up in tests: a request the real API would refuse is refused with
// the documented error, and every answer has the documented shape.
//
// It is NOT the real service. It simulates the subset below and nothing else; passing
// against it proves an adapter reads the documentation the way the simulator does, which is
// necessary and not sufficient. Check against the YooKassa test shop before going live.
//
// # Sources followed
//
//   - The official OpenAPI specification (yookassa-openapi-specification.yaml, servers
//     https://api.yookassa.ru/v3): paths /payments, /payments/{payment_id}, /refunds,
//     /refunds/{refund_id}; schemas Payment, Refund, MonetaryAmount, Metadata, ReceiptData,
//     ReceiptDataItem, ReceiptItemVatCode, PaymentCancellationDetails,
//     RefundCancellationDetails, Error and its codes, PaymentList, RefundList; the parameters
//     IdempotenceKey, CreatedGte/Gt/Lte/Lt, Limit, NextCursor.
//   - Interaction format (authentication, idempotence):
//     https://yookassa.ru/developers/using-api/interaction-format
//   - HTTP codes: https://yookassa.ru/developers/using-api/response-handling/http-codes
//   - Declined payments, cancellation_details party and reason:
//     https://yookassa.ru/developers/payments/declined-payments
//     (https://yookassa.ru/developers/payment-acceptance/after-the-payment/declined-payments)
//   - Notifications: https://yookassa.ru/developers/using-api/webhooks
//   - Refunds and lists, as the spec's descriptions of /refunds and of the list parameters
//     summarize them: https://yookassa.ru/developers/payment-acceptance/after-the-payment/refunds,
//     https://yookassa.ru/developers/using-api/lists
//   - Receipt parameter values, vat_code 1..12 with 11 = 22% and 12 = 22/122 from
//     1 January 2026: https://yookassa.ru/developers/54fz/parameters-values
//   - Saved payment methods (autopayments), as the spec's PaymentMethodId,
//     SavePaymentMethodAttribute and PaymentMethod.saved summarize them:
//     https://yookassa.ru/developers/payment-acceptance/scenario-extensions/recurring-payments/basics
//   - The error text "Idempotence key duplicated" (parameter Idempotence-Key) is the one the
//     official SDKs' tests and many integrations quote; the spec gives only the code.
//   - The official PHP SDK's test fixtures (yoomoney/yookassa-sdk-php, tests/Client/fixtures),
//     for the field names of Payment and Refund.
//
// # What is simulated
//
//   - URL() is the API base, the counterpart of https://api.yookassa.ru/v3. Endpoints:
//     POST /payments, GET /payments/{id}, GET /payments, POST /refunds, GET /refunds/{id},
//     GET /refunds. Anything else is 404 not_found.
//   - HTTP Basic authentication with ShopID() : SecretKey(); otherwise 401
//     invalid_credentials. Every error body is the documented Error object: type "error",
//     id, code, description, parameter.
//   - POST requires Content-Type application/json (else 415) and an Idempotence-Key header
//     of at most 64 characters (else 400 invalid_request, parameter Idempotence-Key). The
//     same key with the same request (method, path and JSON body, compared as parsed JSON)
//     within 24 hours of the simulator's clock gets the same status and body as the first
//     time, even if the object has changed since (GET it for its state); the same key with
//     another request gets 400 invalid_request "Idempotence key duplicated", parameter
//     Idempotence-Key. After 24 hours the key is forgotten and the request is new. Answers
//     that created nothing (a 400, a scripted 500 or 429) are not stored.
//   - Validation, each failure a 400 invalid_request naming the parameter: amount.value a
//     string with exactly two decimals and > 0 (stricter than the real API, which also takes
//     other forms: an adapter should send "990.00"); amount.currency in the CurrencyCode enum
//     and RUB for payments (the simulated shop's currency); description at most 128
//     characters (250 for refunds); metadata at most 16 keys of at most 32 characters with
//     string values of at most 512; a payment has payment_method_id (an autopayment) or a
//     redirect confirmation with return_url; a receipt is required unless WithoutReceipts:
//     customer email or phone (phone digits only, per the schema's pattern [0-9]{4,15}),
//     1 to 100 items each with description (1..128), quantity > 0 (number or numeric string),
//     amount (the UNIT price, tag 1079, in the payment's currency), vat_code an integer 1..12,
//     payment_mode and payment_subject from their enums, and Σ price × quantity equal to the
//     payment's (or refund's) amount. A refund's payment must exist and have succeeded, and
//     its amount must not exceed what is left of the payment after its succeeded and pending
//     refunds.
//   - Payments: an autopayment (payment_method_id) succeeds at once by default. With capture
//     true it is succeeded with captured_at; with capture false or absent (the documented
//     default) it is waiting_for_capture with expires_at and is canceled with
//     expired_on_capture after CaptureWindow. A checkout payment (confirmation redirect,
//     usually save_payment_method true) is pending with confirmation.confirmation_url until
//     the test plays the customer: Succeed (payment_method.saved becomes true and
//     payment_method.id is the token for autopayments) or Cancel. Any payment_method_id is
//     accepted as a saved card.
//   - Behaviours per payment method (Script), for all payments (ScriptAll) and for refunds
//     (ScriptRefunds): every documented cancellation reason with its party (Decline,
//     DeclineBy), pending until settled by the test (Pending) or by the clock
//     (PendingThen), success whose answer never arrives (TimeoutAfterSuccess), success
//     answered 500 (InternalErrorAfterSuccess), 500 and 429 with nothing done. FailGETs
//     fails the next GETs with 500 or 429.
//   - Lists: created_at.gte/gt/lte/lt, status, limit 1..100 (default 10), cursor; for
//     payments also captured_at.gte/gt/lte/lt and payment_method, for refunds payment_id.
//     Items newest first (by created_at descending; objects created at the same instant of
//     the simulator's clock, later creation first); next_cursor while more items follow,
//     passed back as cursor; items is [] on an empty page. A cursor is opaque. Any other
//     query parameter is refused (400, parameter named): there is no metadata filter on
//     payments or refunds (the spec has one for payouts only), so an adapter looking for
//     the payment made under a key must page from created_at.gte and compare metadata
//     itself.
//   - Notifications: type "notification", event payment.waiting_for_capture,
//     payment.succeeded, payment.canceled or refund.succeeded, object the Payment or Refund
//     as it was at the change. Recorded (Notifications) and, if a webhook URL is set, POSTed
//     once from a loopback address (SetWebhookSource), with no Authorization header and no
//     signature: a receiver can trust only the source address and what a GET of the object
//     says, and must confirm every notification with a GET.
//   - A clock of its own (Now, Advance, SetClock): created_at, captured_at, expires_at, the
//     24-hour idempotence window and PendingThen all follow it, and due changes are applied
//     whenever the simulator reads it. Tests never sleep.
//   - Read-only records for tests: Payments, Payment, Refunds, Notifications, Requests.
//
// # What is not simulated
//
// Capture and cancel of a payment by the merchant (POST /payments/{id}/capture and
// /cancel), payment_method_data, payment_token, confirmation types other than redirect, the
// confirmation page itself (confirmation_url leads nowhere), payment methods other than bank
// cards, 3-D Secure, the expiry of unconfirmed checkout payments (use PendingThen with
// Decline("expired_on_confirmation")), /payment_methods, /receipts, receipt registration as
// its own process (receipt_registration follows the payment), income_amount, deals, splits,
// payouts, OAuth, rate limits other than scripted 429s, 403 forbidden, webhook retries and
// the real notification source addresses, filters other than those above, HTTPS, and the
// real service's exact error descriptions (only code and parameter are meant to be matched).
//
// The simulator never logs: the secret key appears nowhere but in SecretKey's answer.
package yookassatest
