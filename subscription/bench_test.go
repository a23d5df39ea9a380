package subscription_test

import (
	"testing"

	"github.com/smm-gpt/billing/subscription"
)

// BenchmarkConsume measures one all-or-nothing Consume on a period with two meters in
// use: the check plus the copy of the Usage map that keeps the argument untouched.
func BenchmarkConsume(b *testing.B) {
	p := period(proTerms(1), map[string]subscription.Usage{"generations": {Used: 10}, "images": {Used: 1}})
	for b.Loop() {
		if _, err := subscription.Consume(p, "generations", 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAccess measures the whichever-first access decision of an active subscription.
func BenchmarkAccess(b *testing.B) {
	s := subscription.Subscription{ID: "s", Status: subscription.StatusActive,
		Current: new(period(proTerms(1), map[string]subscription.Usage{"generations": {Used: 10}}))}
	for b.Loop() {
		if !subscription.Access(s, mid).Granted {
			b.Fatal("refused")
		}
	}
}
