package yookassatest

import (
	"github.com/shopspring/decimal"
)

// The wire objects below follow the schemas of the official OpenAPI specification
// (components/schemas: Payment, Refund, MonetaryAmount, PaymentMethodBankCard,
// ConfirmationRedirect, PaymentCancellationDetails, RefundCancellationDetails, Error,
// PaymentList, RefundList). Only the fields the simulator fills are declared; a field the
// real API may add (income_amount, authorization_details, transfers, …) is absent here, so a
// decoder that requires it is wrong anyway.

// Amount is the MonetaryAmount schema: a decimal string with two digits after the point
// ("1000.00") and an ISO 4217 currency code.
type Amount struct {
	// Value is the amount as a string, e.g. "990.00".
	Value string `json:"value"`
	// Currency is the ISO 4217 code, e.g. "RUB".
	Currency string `json:"currency"`
}

// Recipient is the payment's recipient: the shop (account_id) and its gateway.
type Recipient struct {
	// AccountID is the shop ID.
	AccountID string `json:"account_id"`
	// GatewayID is the sub-account; the simulator always answers "1".
	GatewayID string `json:"gateway_id"`
}

// Card is the BankCardData schema: what the API shows of a card, never its number.
type Card struct {
	// First6 is the BIN.
	First6 string `json:"first6,omitempty"`
	// Last4 is the last four digits.
	Last4 string `json:"last4"`
	// ExpiryYear is YYYY.
	ExpiryYear string `json:"expiry_year"`
	// ExpiryMonth is MM.
	ExpiryMonth string `json:"expiry_month"`
	// CardType is the scheme ("Mir", "Visa", "MasterCard", "Unknown").
	CardType string `json:"card_type"`
}

// PaymentMethod is the payment's payment_method (PaymentMethodBankCard): its id is the token
// of later autopayments when Saved is true.
type PaymentMethod struct {
	// Type is always "bank_card" in the simulator.
	Type string `json:"type"`
	// ID is the payment method's id: the payment_method_id of autopayments once Saved.
	ID string `json:"id"`
	// Saved reports whether the method may be charged without the customer.
	Saved bool `json:"saved"`
	// Title is the name shown to the customer ("Bank card *4444").
	Title string `json:"title,omitempty"`
	// Card is the card's public data.
	Card *Card `json:"card,omitempty"`
}

// Confirmation is the payment's confirmation of type redirect (ConfirmationRedirect).
type Confirmation struct {
	// Type is "redirect".
	Type string `json:"type"`
	// ReturnURL is the return_url of the request.
	ReturnURL string `json:"return_url,omitempty"`
	// ConfirmationURL is the page the customer is sent to; present while pending.
	ConfirmationURL string `json:"confirmation_url,omitempty"`
}

// CancellationDetails says who canceled a payment or refund and why (PaymentCancellationDetails,
// RefundCancellationDetails).
type CancellationDetails struct {
	// Party is yoo_money, payment_network or merchant for a payment; yoo_money or
	// refund_network for a refund.
	Party string `json:"party"`
	// Reason is one of PaymentCancellationReasons or RefundCancellationReasons.
	Reason string `json:"reason"`
}

// Payment is the Payment object as the API returns it.
type Payment struct {
	// ID is the payment's id, 36 characters.
	ID string `json:"id"`
	// Status is pending, waiting_for_capture, succeeded or canceled.
	Status string `json:"status"`
	// Amount is the payment's amount.
	Amount Amount `json:"amount"`
	// Description is the request's description.
	Description string `json:"description,omitempty"`
	// Recipient is the shop.
	Recipient Recipient `json:"recipient"`
	// PaymentMethod is the method charged; absent on a checkout payment the customer has not
	// paid yet.
	PaymentMethod *PaymentMethod `json:"payment_method,omitempty"`
	// CapturedAt is when the payment succeeded (ISO 8601, UTC, milliseconds).
	CapturedAt string `json:"captured_at,omitempty"`
	// CreatedAt is when the payment was created.
	CreatedAt string `json:"created_at"`
	// ExpiresAt is, for waiting_for_capture, when the payment is canceled if not captured.
	ExpiresAt string `json:"expires_at,omitempty"`
	// Confirmation is the redirect confirmation of a checkout payment.
	Confirmation *Confirmation `json:"confirmation,omitempty"`
	// Test is true: every simulated payment is a test payment.
	Test bool `json:"test"`
	// RefundedAmount is the sum of the succeeded refunds; present once there is one.
	RefundedAmount *Amount `json:"refunded_amount,omitempty"`
	// Paid reports whether the money was taken (succeeded or waiting_for_capture).
	Paid bool `json:"paid"`
	// Refundable reports whether a refund may be made through the API.
	Refundable bool `json:"refundable"`
	// ReceiptRegistration is the receipt's status when a receipt was sent.
	ReceiptRegistration string `json:"receipt_registration,omitempty"`
	// Metadata is the request's metadata, {} when none was sent.
	Metadata map[string]string `json:"metadata"`
	// CancellationDetails says why a canceled payment was canceled.
	CancellationDetails *CancellationDetails `json:"cancellation_details,omitempty"`
}

// Refund is the Refund object as the API returns it.
type Refund struct {
	// ID is the refund's id, 36 characters.
	ID string `json:"id"`
	// PaymentID is the refunded payment.
	PaymentID string `json:"payment_id"`
	// Status is pending, succeeded or canceled.
	Status string `json:"status"`
	// CancellationDetails says why a canceled refund was canceled.
	CancellationDetails *CancellationDetails `json:"cancellation_details,omitempty"`
	// ReceiptRegistration is the receipt's status when a receipt was sent.
	ReceiptRegistration string `json:"receipt_registration,omitempty"`
	// CreatedAt is when the refund was created.
	CreatedAt string `json:"created_at"`
	// Amount is the amount returned.
	Amount Amount `json:"amount"`
	// Description is the request's description.
	Description string `json:"description,omitempty"`
	// Metadata is the request's metadata; absent when none was sent.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// List is the PaymentList / RefundList schema: type "list", the items newest first, and
// next_cursor when more items follow.
type List[T any] struct {
	// Type is "list".
	Type string `json:"type"`
	// Items are the objects of this page, newest first.
	Items []T `json:"items"`
	// NextCursor is the cursor of the next page; absent on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Notification is the body of a webhook (notification) the API sends when an object changes.
type Notification struct {
	// Type is "notification".
	Type string `json:"type"`
	// Event is payment.waiting_for_capture, payment.succeeded, payment.canceled or
	// refund.succeeded.
	Event string `json:"event"`
	// Object is the Payment or Refund as it was at the change.
	Object any `json:"object"`
}

// ErrorBody is the Error schema every error answer carries.
type ErrorBody struct {
	// Type is "error".
	Type string `json:"type"`
	// ID is the error's id.
	ID string `json:"id"`
	// Code is invalid_request, invalid_credentials, not_found, too_many_requests or
	// internal_server_error.
	Code string `json:"code,omitempty"`
	// Description says what is wrong.
	Description string `json:"description,omitempty"`
	// Parameter names the request parameter at fault ("amount.value", "Idempotence-Key").
	Parameter string `json:"parameter,omitempty"`
	// RetryAfter is the suggested wait in milliseconds (429 and 500).
	RetryAfter int `json:"retry_after,omitempty"`
}

// Receipt is a 54-FZ receipt as the simulator received it in a request, decoded and checked.
type Receipt struct {
	// Customer is where the receipt is sent.
	Customer ReceiptCustomer
	// Items are the receipt's lines.
	Items []ReceiptItem
	// TaxSystemCode is tax_system_code, 0 when absent.
	TaxSystemCode int
}

// ReceiptCustomer is the receipt's customer: an email, a phone or both.
type ReceiptCustomer struct {
	// Email is customer.email.
	Email string
	// Phone is customer.phone (digits only, per the schema's pattern).
	Phone string
	// FullName is customer.full_name.
	FullName string
}

// ReceiptItem is one line of a received receipt.
type ReceiptItem struct {
	// Description is the item's name (tag 1030).
	Description string
	// Quantity is the quantity (tag 1023).
	Quantity decimal.Decimal
	// Amount is the unit price (tag 1079), not the line total.
	Amount Amount
	// VatCode is the VAT rate code, 1..12 (see VatCodes).
	VatCode int
	// PaymentMode is payment_mode (tag 1214), e.g. "full_prepayment".
	PaymentMode string
	// PaymentSubject is payment_subject (tag 1212), e.g. "service".
	PaymentSubject string
}
