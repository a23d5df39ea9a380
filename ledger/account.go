package ledger

import (
	"strings"

	"github.com/smm-gpt/billing/money"
)

// Side is the side of an account a posting is written on. A debit raises an asset or an
// expense and lowers a liability or an income; a credit does the opposite.
type Side string

// The two sides. Their string values are what a store writes in a text column.
const (
	Debit  Side = "debit"
	Credit Side = "credit"
)

// Valid reports whether s is Debit or Credit. The zero value "" is not valid.
func (s Side) Valid() bool { return s == Debit || s == Credit }

// Opposite returns Credit for Debit and Debit for Credit; an invalid side stays as it is.
func (s Side) Opposite() Side {
	switch s {
	case Debit:
		return Credit
	case Credit:
		return Debit
	}
	return s
}

// AccountType is the kind of an account, which decides its normal balance side.
type AccountType string

// The four account types the engine needs. There is no equity: the engine does not close
// its books; that happens in the operator's accounting system.
const (
	// Asset is something we hold: money at the payment provider. Normal side: debit.
	Asset AccountType = "asset"
	// Liability is something we owe: service paid for and not yet delivered, refunds
	// approved and not yet paid. Normal side: credit.
	Liability AccountType = "liability"
	// Income is revenue earned. Normal side: credit.
	Income AccountType = "income"
	// Expense is a cost: the provider's fees. Normal side: debit.
	Expense AccountType = "expense"
)

// Valid reports whether t is one of the four types.
func (t AccountType) Valid() bool {
	return t == Asset || t == Liability || t == Income || t == Expense
}

// NormalSide returns the side on which an account of type t normally carries its balance:
// Debit for assets and expenses, Credit for liabilities and income, "" for an invalid type.
func (t AccountType) NormalSide() Side {
	switch t {
	case Asset, Expense:
		return Debit
	case Liability, Income:
		return Credit
	}
	return ""
}

// Account is one account of the chart: a code, a type and the single currency every posting
// on it must be in. Accounts are values compared with ==.
type Account struct {
	// Code identifies the account, unique across the chart: "provider:RUB".
	Code string
	// Type decides the normal balance side.
	Type AccountType
	// Currency is the ISO 4217 code of every posting on the account ("RUB").
	Currency string
	// Contra marks a contra account, whose normal side is the opposite of its type's:
	// refunded_revenue is income carried as a debit balance, so that revenue keeps showing
	// gross earnings. False for every other account.
	Contra bool
}

// NormalSide returns the side on which the account normally carries its balance: its
// type's normal side, flipped for a contra account.
func (a Account) NormalSide() Side {
	if a.Contra {
		return a.Type.NormalSide().Opposite()
	}
	return a.Type.NormalSide()
}

// Lookup finds an account by its code; ok is false for an unknown code. StandardChart is the
// Lookup of this business's chart; a store may pass a method value of its own table.
type Lookup func(code string) (Account, bool)

// Role is one account of the standard chart, without its currency. The account's code is
// the role, a colon and the currency: ProviderCash.Code("RUB") == "provider:RUB".
type Role string

// The roles of the standard chart. See the package documentation for which business event
// posts to which role.
const (
	// ProviderCash (asset) is money held for us at the payment provider: charges raise it,
	// refunds paid out and fees lower it.
	ProviderCash Role = "provider"
	// DeferredRevenue (liability) is money for service paid for and not yet earned: a
	// charge raises it, recognition and refunds of the unearned part lower it.
	DeferredRevenue Role = "deferred"
	// Revenue (income) is revenue earned, gross of refunds. Only Recognize credits it; it is
	// never debited except by a reversal.
	Revenue Role = "revenue"
	// RefundedRevenue (income, contra) is earned revenue given back in refunds; net revenue
	// is Revenue minus RefundedRevenue.
	RefundedRevenue Role = "refunded_revenue"
	// RefundsPayable (liability) is refunds approved and not yet paid out; TERMS 3.8 gives
	// up to 10 calendar days between the request and the money reaching the customer.
	RefundsPayable Role = "refunds_payable"
	// ProviderFees (expense) is what the payment provider kept as its fee.
	ProviderFees Role = "provider_fees"
)

// Roles lists every role of the standard chart, in the order of the package documentation.
func Roles() []Role {
	return []Role{ProviderCash, DeferredRevenue, Revenue, RefundedRevenue, RefundsPayable, ProviderFees}
}

// Code returns the account code of r in currency: "provider:RUB". It does not check the
// currency; StandardChart refuses a code with an unknown one.
func (r Role) Code(currency string) string { return string(r) + ":" + currency }

// Account returns the account of r in currency. The currency is not checked here: a
// transaction on an account of an unknown currency fails Validate.
func (r Role) Account(currency string) Account {
	a := Account{Code: r.Code(currency), Currency: currency}
	switch r {
	case ProviderCash:
		a.Type = Asset
	case DeferredRevenue, RefundsPayable:
		a.Type = Liability
	case Revenue:
		a.Type = Income
	case RefundedRevenue:
		a.Type, a.Contra = Income, true
	case ProviderFees:
		a.Type = Expense
	}
	return a
}

// StandardChart is the Lookup of this business's chart of accounts: it knows every
// "<role>:<currency>" code for a role in Roles and a currency the money package knows.
func StandardChart(code string) (Account, bool) {
	role, currency, ok := strings.Cut(code, ":")
	if !ok || !money.Known(currency) {
		return Account{}, false
	}
	for _, r := range Roles() {
		if Role(role) == r {
			return r.Account(currency), true
		}
	}
	return Account{}, false
}

// ChartFor returns every account of the standard chart in currency, in Roles order: what a
// store seeds its accounts table with. An unknown currency returns nil.
func ChartFor(currency string) []Account {
	if !money.Known(currency) {
		return nil
	}
	roles := Roles()
	accounts := make([]Account, len(roles))
	for i, r := range roles {
		accounts[i] = r.Account(currency)
	}
	return accounts
}
