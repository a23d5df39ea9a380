// Package yookassa is the payment.Gateway and payment.CheckoutGateway of YooKassa (API v3,
// https://yookassa.ru/developers/api): renewals charged from a saved payment method, first
// payments on YooKassa's page that save the method, refunds with their 54-FZ receipts,
// lookups that survive YooKassa forgetting idempotence keys after 24 hours, and the
// reading of YooKassa's notifications.
//
// It speaks HTTP with net/http and encoding/json directly. The community SDK
// rvinnie/yookassa-sdk-go was considered and not used: its client has no timeout and no
// context (a hung call cannot be bounded or cancelled), no retry, a hard-coded base URL
// (no httptest), keeps the secret key in a printable struct, and its receipt VAT codes stop
// at 6 (no 5%, 7%, nor the 22% and 22/122 rates of 2026). Only six endpoints are needed;
// owning them keeps the payment.Gateway traps (errors are never declines) in one place.
//
// # Invariants
//
//   - An ambiguous failure is an error, never a decline: a timeout, a dropped connection, an
//     undecodable answer, HTTP 5xx or 429 after the last retry (outcome unknown); HTTP 401,
//     403 and 400 invalid_request (the operator's set-up; *APIError.SetupFault). Only a
//     payment or refund in status canceled is a decline.
//   - Every POST carries Idempotence-Key = the request's IdempotencyKey (1 to 64 of
//     0-9 a-z A-Z + - _ ., YooKassa's pattern, checked before sending), and is retried (429, 5xx, transport failures, with
//     backoff honouring Retry-After) only under that same key; GETs are retried likewise.
//   - Every payment and refund carries its key in metadata[payment.MetadataIdempotencyKey],
//     which Lookup and LookupRefund match; a request whose metadata names another key, or
//     breaks YooKassa's limits (16 keys, keys of 32 characters, values of 512), is refused
//     before sending.
//   - Lookup and LookupRefund only read: they never create a payment or a refund.
//   - The secret key is never in a log, an error or any fmt or slog rendering of Config or
//     Gateway (Secret). No card data: answers are decoded into the few fields used, never
//     card details; request bodies are never logged (receipts carry an email or a phone).
//
// # Amounts and receipts
//
// Amounts go as YooKassa's decimal strings with the currency's exponent from the money
// package ("990.00" RUB); a currency YooKassa does not take (CNY, JPY) is refused before
// sending. A receipt is sent with the customer's email or phone (required by YooKassa, so
// checked before sending), each line's description, quantity, unit price, vat_code,
// payment_mode (full_prepayment) and payment_subject (service). A refund's receipt has the
// same shape; YooKassa makes it the "return of income" receipt of the refund. vat_code per
// https://yookassa.ru/developers/54fz/parameters-values:
//
//	VATNone 1, VAT0 2, VAT10 3, VAT20 4, VAT10Of110 5, VAT20Of120 6,
//	VAT5 7, VAT7 8, VAT5Of105 9, VAT7Of107 10, VAT22 11, VAT22Of122 12.
//
// # Declines
//
// A canceled payment is declined; its cancellation_details.reason becomes DeclineCode and
// the DeclineMessage names it and the party (merchant, yoo_money, payment_network). The
// reasons are those of https://yookassa.ru/developers/payment-acceptance/after-the-payment/declined-payments
// (and the PaymentCancellationDetails enum of the OpenAPI specification). Hard means the
// method will never work again (the subscription ends, no dunning); soft means try again on
// the dunning schedule (1, 3, 5 days), which is bounded, so a wrong "soft" costs a few
// refused retries while a wrong "hard" ends a paying customer's subscription.
//
//	reason                         outcome  why
//	3d_secure_failed               soft     the issuer wanted 3-D Secure; the card is not dead
//	call_issuer                    soft     declined for an unstated reason; the customer may sort it out with the bank
//	canceled_by_merchant           soft     a two-stage payment canceled by the shop; says nothing about the method
//	card_expired                   hard     the card has expired; docs: use another payment method
//	country_forbidden              hard     cards of that country cannot pay this shop, ever
//	deal_expired                   soft     Safe Deal only; says nothing about the method
//	expired_on_capture             soft     two-stage capture deadline passed; says nothing about the method
//	expired_on_confirmation        soft     the customer did not confirm in time (a checkout); may try again
//	fraud_suspected                hard     blocked as fraud; retrying would look like more fraud
//	general_decline                soft     the reason is not detailed; the usual "do not honour", often passing
//	identification_required        soft     a YooMoney wallet's limits; lifted when the wallet is identified
//	insufficient_funds             soft     not enough money now
//	internal_timeout               soft     YooKassa's own technical fault; the money did not move
//	invalid_card_number            hard     the saved card's number is no longer valid (reissued or closed)
//	invalid_csc                    soft     a mistyped CVC at checkout; the card itself is fine
//	issuer_unavailable             soft     the issuer could not be reached
//	payment_method_limit_exceeded  soft     a limit of the method or the shop; limits reset
//	payment_method_restricted      hard     operations with this method are forbidden (blocked, lost, stolen)
//	permission_revoked             hard     the customer withdrew consent to charges without acceptance (law of 1 March 2026)
//	unsupported_mobile_operator    hard     this phone's operator can never pay this shop
//	(any other, or none)           soft     a new or missing reason is not proof the method is dead (see above)
//
// A canceled refund, per the RefundCancellationDetails enum and
// https://yookassa.ru/developers/payment-acceptance/after-the-payment/refunds (declined
// refunds); soft means "may be tried again later", hard "the money must go back another
// way" (a person arranges it):
//
//	reason                            outcome  why
//	general_decline                   soft     not detailed; YooKassa support can say more
//	insufficient_funds                soft     the shop's balance at YooKassa is short for now
//	rejected_by_timeout               soft     the refund network timed out
//	rejected_by_payee                 hard     the issuer refused the refund
//	yoo_money_account_closed          hard     the wallet the money came from is closed
//	payment_basket_id_not_found       hard     electronic-certificate data: the same request fails again
//	payment_article_number_not_found  hard     likewise
//	payment_tru_code_not_found        hard     likewise
//	too_many_refunding_articles       hard     likewise
//	some_articles_already_refunded    hard     likewise
//	(any other, or none)              soft     as for payments
//
// Statuses: succeeded is OutcomeSucceeded; pending and waiting_for_capture (which capture
// true should never produce: money held, not taken) are OutcomePending; an unknown status
// is an error.
//
// # Lookup
//
// YooKassa keeps an idempotence key for about 24 hours; the engine may ask for days. So
// Lookup does not resend the create request under the key to see what comes back: if the
// original never reached YooKassa, or its key has expired, that "lookup" would charge,
// without the engine's consent check (consent may have been withdrawn since). Lookup only
// reads:
//
//  1. With ProviderPaymentID, GET /payments/{id}; the payment is the answer only if its
//     metadata carries the attempt's key. Otherwise (another key: a webhook may name any
//     payment; or HTTP 404) the id proves nothing either way and step 2 runs, so that a
//     wrong id never hides a real charge behind ErrNotFound.
//  2. List GET /payments?created_at.gte=CreatedAt−LookupMargin&created_at.lte=now+LookupMargin
//     &limit=100, following next_cursor, and match the metadata key. ErrNotFound only after
//     the last page of the window; a failure on any page is an error (still unknown).
//
// Bounds: the window starts at the attempt's CreatedAt less LookupMargin (1 hour by
// default, for clock skew) and ends now (or CreatedAt, if the engine's clock is ahead of
// this one) plus the margin. It does not end at CreatedAt plus a
// few days: the engine sends a charge under the key whenever it (re)sends the attempt, which
// can be days after it was created, and a window closing earlier would answer ErrNotFound
// for a charge that exists (a double charge on the next send). The work is bounded by
// MaxListPages (50 pages of 100 by default): a listing that reaches it without a match is
// ErrListingLimit, an error, never ErrNotFound. Two payments under one key are
// ErrDuplicateKey. YooKassa lists payments of the last 3 years.
//
// A pending checkout payment found either way answers with its confirmation_url
// (ChargeResult.ConfirmationURL), so a checkout whose StartCheckout answer was lost still
// gets its page.
//
// LookupRefund is the same over GET /refunds/{id} and GET /refunds?payment_id=…, checking
// that the refund is of the request's payment.
//
// # Notifications
//
// ParseNotification maps payment.succeeded, payment.waiting_for_capture, payment.canceled
// and refund.succeeded to a payment.WebhookEvent; any other event is an *UnknownEventError
// the host answers with HTTP 200 (so YooKassa stops redelivering) and ignores. YooKassa
// signs nothing; FromYooKassa checks the sender's address against Config.TrustedNetworks,
// by default NotificationIPs, the ranges listed on
// https://yookassa.ru/developers/using-api/webhooks. The engine confirms every webhook with
// Lookup either way.
package yookassa
