package console

import (
	"testing"

	"github.com/smm-gpt/billing/payment"
	"github.com/smm-gpt/billing/refund"
	"github.com/smm-gpt/billing/subscription"
)

// TestActionLabels: the audit log's actions the console shows have Russian labels: every
// subscription action the state machine audits, every provider outcome of a refund try
// ("refund." + outcome), every attempt state a history records ("attempt." + state) and
// the refund, payment and account-deletion actions; an unknown
// action is shown as the engine names it.
func TestActionLabels(t *testing.T) {
	t.Parallel()
	actions := []string{"refund.requested", "refund.received", "refund.escalated", "refund.verified", "refund.rejected",
		"refund.override", "refund.executing", "refund.after_end", "payment.unapplied", "payment.unapplied_refunded",
		"payment.unapplied_parked", "tariff.publish", "tariff.retire", "account_deletion.requested", "account_deletion.executed"}
	for _, a := range []subscription.Action{subscription.ActionCreate, subscription.ActionActivate,
		subscription.ActionFirstPaymentFailed, subscription.ActionRenew, subscription.ActionMarkPastDue, subscription.ActionEnd,
		subscription.ActionExhaust, subscription.ActionRefund, subscription.ActionSuspend, subscription.ActionResume,
		subscription.ActionTerminate, subscription.ActionExtendPeriod, subscription.ActionSetAutoRenew,
		subscription.ActionWithdrawConsent} {
		actions = append(actions, "subscription."+string(a))
	}
	for _, o := range []payment.Outcome{payment.OutcomeSucceeded, payment.OutcomePending, payment.OutcomeSoftDeclined,
		payment.OutcomeHardDeclined, payment.OutcomeUnknown} {
		actions = append(actions, "refund."+string(o))
	}
	for _, st := range []payment.State{payment.StateCreated, payment.StatePending, payment.StateSucceeded,
		payment.StateSoftDeclined, payment.StateHardDeclined, payment.StateUnknown, payment.StateCanceled} {
		actions = append(actions, "attempt."+string(st)) // RefundHistoryGet / AttemptHistoryGet records
	}
	actions = append(actions, "attempt.sent", "attempt.parked")
	for _, a := range actions {
		if l := actionLabel(a); l == a || l == "" {
			t.Errorf("actionLabel(%q) = %q: no Russian label", a, l)
		}
	}
	if got := actionLabel("something.new"); got != "something.new" {
		t.Errorf("an unknown action is shown as is, got %q", got)
	}
}

// TestReasonsLabel: every condition of TERMS 3.7 a decision can fail has a Russian label,
// listed in the decision's order.
func TestReasonsLabel(t *testing.T) {
	t.Parallel()
	all := []refund.Reason{refund.ReasonWindowClosed, refund.ReasonUsed, refund.ReasonOpenReservation, refund.ReasonRenewal}
	for _, r := range all {
		if l := reasonsLabel([]refund.Reason{r}); l == string(r) || l == "" {
			t.Errorf("3.7 reason %q has no Russian label", r)
		}
	}
	if got, want := reasonsLabel([]refund.Reason{refund.ReasonWindowClosed, refund.ReasonUsed}),
		"заявление получено после окна в 5 рабочих дней; объём периода использован"; got != want {
		t.Errorf("reasonsLabel = %q, want %q", got, want)
	}
	if got := reasonsLabel([]refund.Reason{"new_rule"}); got != "new_rule" {
		t.Errorf("an unknown reason is shown as is, got %q", got)
	}
}
