package payment_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/payment"
)

func TestNewAttemptKey(t *testing.T) {
	t.Parallel()

	nonce := "9f86d081884c7d659a2feaa0c55ad015"
	tests := []struct {
		name    string
		purpose payment.Purpose
		nonce   string
		want    string
		wantErr error
	}{
		{"renewal key: prefix and the random nonce, nothing derived from the subscription", payment.PurposeRenewal, nonce, "renew_" + nonce, nil},
		{"3.3 checkout key has its own prefix", payment.PurposeCheckout, nonce, "checkout_" + nonce, nil},
		{"a UUID nonce fits the 64-character limit", payment.PurposeCheckout, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "checkout_0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", nil},
		{"empty purpose", "", nonce, "", payment.ErrInvalid},
		{"unknown purpose", "trial", nonce, "", payment.ErrInvalid},
		{"a short nonce could be guessed", payment.PurposeRenewal, "1234", "", payment.ErrInvalid},
		{"a nonce with a separator or space", payment.PurposeRenewal, "abcdefgh:ijklmnopq", "", payment.ErrInvalid},
		{"key longer than 64 characters", payment.PurposeRenewal, strings.Repeat("x", 60), "", payment.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := payment.NewAttemptKey(tt.purpose, tt.nonce)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.LessOrEqual(t, len(got), payment.MaxKeyLen)
		})
	}
}

func TestNewAttempt(t *testing.T) {
	t.Parallel()

	t.Run("fixes the key before any gateway call", func(t *testing.T) {
		t.Parallel()
		a := newAttempt(t, payment.PurposeRenewal, 2)
		require.Equal(t, payment.StateCreated, a.State)
		require.Equal(t, keyOf(payment.PurposeRenewal, 2), a.IdempotencyKey)
		require.Equal(t, now, a.CreatedAt)
		require.True(t, a.SettledAt.IsZero())
	})

	tests := []struct {
		name   string
		modify func(*payment.AttemptSpec)
	}{
		{"empty id", func(s *payment.AttemptSpec) { s.ID = " " }},
		{"zero amount", func(s *payment.AttemptSpec) { s.Amount = 0 }},
		{"negative amount", func(s *payment.AttemptSpec) { s.Amount = -1 }},
		{"unknown currency", func(s *payment.AttemptSpec) { s.Currency = "XXX" }},
		{"lower-case currency", func(s *payment.AttemptSpec) { s.Currency = "rub" }},
		{"zero due time", func(s *payment.AttemptSpec) { s.DueAt = zeroTime }},
		{"bad purpose", func(s *payment.AttemptSpec) { s.Purpose = "gift" }},
		{"period 0", func(s *payment.AttemptSpec) { s.PeriodNumber = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := spec(payment.PurposeRenewal, 1)
			tt.modify(&s)
			_, err := payment.NewAttempt(s, now)
			require.ErrorIs(t, err, payment.ErrInvalid)
		})
	}

	t.Run("zero creation time", func(t *testing.T) {
		t.Parallel()
		_, err := payment.NewAttempt(spec(payment.PurposeRenewal, 1), zeroTime)
		require.ErrorIs(t, err, payment.ErrInvalid)
	})
}

func TestAttemptChargeRequest(t *testing.T) {
	t.Parallel()

	details := func(t *testing.T) payment.ChargeDetails {
		return payment.ChargeDetails{
			CustomerID: custID, Description: "Pro, 1 month", Receipt: receipt(t),
			Metadata: map[string]string{"tariff": "pro"},
		}
	}

	t.Run("built from the attempt: its key, amount and currency", func(t *testing.T) {
		t.Parallel()
		a := newAttempt(t, payment.PurposeRenewal, 1)
		d := details(t)
		req, err := a.ChargeParams(consented(), d, now)
		require.NoError(t, err)
		require.Equal(t, a.IdempotencyKey, req.IdempotencyKey)
		require.Equal(t, price, req.Amount)
		require.Equal(t, rub, req.Currency)
		require.Equal(t, token, req.PaymentMethod)
		require.Equal(t, map[string]string{
			"tariff": "pro", payment.MetadataAttemptID: a.ID, payment.MetadataIdempotencyKey: a.IdempotencyKey,
		}, req.Metadata)
		require.Equal(t, map[string]string{"tariff": "pro"}, d.Metadata, "the caller's map is not changed")
		require.NoError(t, req.Validate())
	})

	t.Run("nil metadata", func(t *testing.T) {
		t.Parallel()
		d := details(t)
		d.Metadata = nil
		req, err := newAttempt(t, payment.PurposeRenewal, 1).ChargeParams(consented(), d, now)
		require.NoError(t, err)
		require.Len(t, req.Metadata, 2)
	})

	for _, s := range allStates {
		if s == payment.StateCreated {
			continue
		}
		name := fmt.Sprintf("a %s attempt is never charged again", s)
		if s == payment.StateUnknown {
			name = "3.5 unknown outcome is reconciled, never recharged"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := attemptIn(t, s).ChargeParams(consented(), details(t), now)
			require.ErrorIs(t, err, payment.ErrIllegalTransition)
			var te *payment.TransitionError
			require.ErrorAs(t, err, &te)
			require.Equal(t, s, te.From)
		})
	}

	refused := []struct {
		name    string
		method  payment.PaymentMethodStatus
		modify  func(*payment.ChargeDetails)
		wantErr error
	}{
		{"consent withdrawn: never charged again", withdrawn(), nil, payment.ErrConsentWithdrawn},
		{"3.4 no consent to recurring charges", payment.PaymentMethodStatus{Token: token}, nil, payment.ErrNoConsent},
		{"5.1 card number instead of a token", payment.PaymentMethodStatus{Token: "4111 1111 1111 1111", ConsentGivenAt: dueAt.AddDate(0, -1, 0)}, nil, payment.ErrCardData},
		{"1.3 no customer", consented(), func(d *payment.ChargeDetails) { d.CustomerID = "" }, payment.ErrInvalid},
		{"no description", consented(), func(d *payment.ChargeDetails) { d.Description = " " }, payment.ErrInvalid},
		{"54-FZ receipt total differs from the amount", consented(), func(d *payment.ChargeDetails) {
			r, _ := payment.NewChargeReceipt("Pro", price-1, rub, payment.VAT22Of122, payment.Contact{})
			d.Receipt = r
		}, payment.ErrInvalid},
		{"54-FZ a return receipt on a charge", consented(), func(d *payment.ChargeDetails) {
			r, _ := payment.NewRefundReceipt("Pro", price, rub, payment.VAT22Of122, payment.Contact{})
			d.Receipt = r
		}, payment.ErrInvalid},
		{"54-FZ no receipt", consented(), func(d *payment.ChargeDetails) { d.Receipt = payment.Receipt{} }, payment.ErrInvalid},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := details(t)
			if tt.modify != nil {
				tt.modify(&d)
			}
			_, err := newAttempt(t, payment.PurposeRenewal, 1).ChargeParams(tt.method, d, now)
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
}

func TestAttemptRecordCharge(t *testing.T) {
	t.Parallel()

	with := func(o payment.Outcome, f func(*payment.ChargeResult)) payment.ChargeResult {
		r := result(o)
		f(&r)
		return r
	}
	tests := []struct {
		name        string
		from        payment.State
		res         payment.ChargeResult
		callErr     error
		want        payment.State
		wantChanged bool
		wantErr     error
	}{
		{"3.5 a call error means the outcome is unknown", payment.StateCreated, result(payment.OutcomeSucceeded), errTimeout, payment.StateUnknown, true, nil},
		{"an unknown outcome without error is the same", payment.StateCreated, payment.ChargeResult{Outcome: payment.OutcomeUnknown}, nil, payment.StateUnknown, true, nil},
		{"3.3 succeeded", payment.StateCreated, result(payment.OutcomeSucceeded), nil, payment.StateSucceeded, true, nil},
		{"3.3 pending", payment.StateCreated, result(payment.OutcomePending), nil, payment.StatePending, true, nil},
		{"3.5 soft decline", payment.StateCreated, result(payment.OutcomeSoftDeclined), nil, payment.StateSoftDeclined, true, nil},
		{"hard decline", payment.StateCreated, result(payment.OutcomeHardDeclined), nil, payment.StateHardDeclined, true, nil},
		{"a decline may omit amount and currency", payment.StateCreated, payment.ChargeResult{Outcome: payment.OutcomeSoftDeclined}, nil, payment.StateSoftDeclined, true, nil},

		{"succeeded for another amount", payment.StateCreated, with(payment.OutcomeSucceeded, func(r *payment.ChargeResult) { r.Amount = price + 1 }), nil, payment.StateCreated, false, payment.ErrAmountMismatch},
		{"succeeded in another currency", payment.StateCreated, with(payment.OutcomeSucceeded, func(r *payment.ChargeResult) { r.Currency = "USD" }), nil, payment.StateCreated, false, payment.ErrAmountMismatch},
		{"succeeded without amount", payment.StateCreated, with(payment.OutcomeSucceeded, func(r *payment.ChargeResult) { r.Amount = 0 }), nil, payment.StateCreated, false, payment.ErrAmountMismatch},
		{"pending for another amount", payment.StateCreated, with(payment.OutcomePending, func(r *payment.ChargeResult) { r.Amount = 1 }), nil, payment.StateCreated, false, payment.ErrAmountMismatch},
		{"decline for another amount", payment.StateCreated, with(payment.OutcomeSoftDeclined, func(r *payment.ChargeResult) { r.Amount = 1 }), nil, payment.StateCreated, false, payment.ErrAmountMismatch},
		{"succeeded without provider payment id", payment.StateCreated, with(payment.OutcomeSucceeded, func(r *payment.ChargeResult) { r.ProviderPaymentID = "" }), nil, payment.StateCreated, false, payment.ErrInvalid},
		{"no outcome", payment.StateCreated, payment.ChargeResult{}, nil, payment.StateCreated, false, payment.ErrInvalid},
		{"an outcome that does not exist", payment.StateCreated, with("paid", func(*payment.ChargeResult) {}), nil, payment.StateCreated, false, payment.ErrInvalid},

		{"duplicate job: the deduplicated answer again is a no-op", payment.StateSucceeded, result(payment.OutcomeSucceeded), nil, payment.StateSucceeded, false, nil},
		{"duplicate job: a timeout after success is a no-op", payment.StateSucceeded, payment.ChargeResult{}, errTimeout, payment.StateSucceeded, false, nil},
		{"duplicate job: a timeout on an unknown attempt is a no-op", payment.StateUnknown, payment.ChargeResult{}, errTimeout, payment.StateUnknown, false, nil},
		{"duplicate job settles an unknown attempt", payment.StateUnknown, result(payment.OutcomeSucceeded), nil, payment.StateSucceeded, true, nil},
		{"a webhook came first: pending then the charge's success", payment.StatePending, result(payment.OutcomeSucceeded), nil, payment.StateSucceeded, true, nil},
		{"succeeded then declined", payment.StateSucceeded, result(payment.OutcomeSoftDeclined), nil, payment.StateSucceeded, false, payment.ErrAlreadySettled},
		{"hard decline then succeeded", payment.StateHardDeclined, result(payment.OutcomeSucceeded), nil, payment.StateHardDeclined, false, payment.ErrAlreadySettled},
		{"soft decline then hard decline", payment.StateSoftDeclined, result(payment.OutcomeHardDeclined), nil, payment.StateSoftDeclined, false, payment.ErrAlreadySettled},
		{"succeeded under another provider payment", payment.StateSucceeded, with(payment.OutcomeSucceeded, func(r *payment.ChargeResult) { r.ProviderPaymentID = "pp-other" }), nil, payment.StateSucceeded, false, payment.ErrPaymentMismatch},
		{"a canceled attempt the gateway charged after all is recorded", payment.StateCanceled, result(payment.OutcomeSucceeded), nil, payment.StateSucceeded, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := attemptIn(t, tt.from)
			got, changed, err := a.RecordCharge(tt.res, tt.callErr, now.Add(2))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, a, got, "a refused answer leaves the attempt unchanged")
				require.False(t, changed)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.State)
			require.Equal(t, tt.wantChanged, changed)
			if !changed {
				require.Equal(t, a, got)
			}
			require.Equal(t, a.IdempotencyKey, got.IdempotencyKey, "the key never changes")
			require.Equal(t, got.State.Settled(), !got.SettledAt.IsZero(), "SettledAt is set exactly when settled")
		})
	}

	t.Run("a decline keeps the provider's reason", func(t *testing.T) {
		t.Parallel()
		got, _, err := newAttempt(t, payment.PurposeRenewal, 1).RecordCharge(result(payment.OutcomeHardDeclined), nil, now)
		require.NoError(t, err)
		require.Equal(t, "card_expired", got.DeclineCode)
		require.Equal(t, ppID, got.ProviderPaymentID)
		require.Equal(t, now, got.SettledAt)
	})

	t.Run("an attempt in a state that does not exist", func(t *testing.T) {
		t.Parallel()
		a := newAttempt(t, payment.PurposeRenewal, 1)
		a.State = "bogus"
		_, _, err := a.RecordCharge(payment.ChargeResult{}, errTimeout, now)
		require.ErrorIs(t, err, payment.ErrIllegalTransition)
		_, _, err = a.RecordCharge(result(payment.OutcomeSucceeded), nil, now)
		require.ErrorIs(t, err, payment.ErrIllegalTransition)
	})
}

func TestAttemptRecordLookup(t *testing.T) {
	t.Parallel()

	notFound := fmt.Errorf("yookassa: lookup: %w", payment.ErrNotFound)
	tests := []struct {
		name        string
		from        payment.State
		res         payment.ChargeResult
		lookupErr   error
		want        payment.State
		wantChanged bool
		wantErr     error
	}{
		{"3.5 unknown outcome: the gateway never saw the key, charge again under it", payment.StateUnknown, payment.ChargeResult{}, notFound, payment.StateCreated, true, nil},
		{"3.5 unknown outcome settled by lookup: succeeded", payment.StateUnknown, result(payment.OutcomeSucceeded), nil, payment.StateSucceeded, true, nil},
		{"3.5 unknown outcome settled by lookup: soft decline", payment.StateUnknown, result(payment.OutcomeSoftDeclined), nil, payment.StateSoftDeclined, true, nil},
		{"3.5 unknown outcome settled by lookup: pending", payment.StateUnknown, result(payment.OutcomePending), nil, payment.StatePending, true, nil},
		{"a lookup error tells nothing", payment.StateUnknown, payment.ChargeResult{}, errTimeout, payment.StateUnknown, false, nil},
		{"a lookup answering unknown tells nothing", payment.StateUnknown, payment.ChargeResult{Outcome: payment.OutcomeUnknown}, nil, payment.StateUnknown, false, nil},
		{"a created attempt found after a crash: not sent", payment.StateCreated, payment.ChargeResult{}, payment.ErrNotFound, payment.StateCreated, false, nil},
		{"a created attempt found after a crash: it was charged", payment.StateCreated, result(payment.OutcomeSucceeded), nil, payment.StateSucceeded, true, nil},
		{"3.3 pending reconciled: succeeded", payment.StatePending, result(payment.OutcomeSucceeded), nil, payment.StateSucceeded, true, nil},
		{"3.3 pending reconciled: hard decline", payment.StatePending, result(payment.OutcomeHardDeclined), nil, payment.StateHardDeclined, true, nil},
		{"3.3 pending reconciled: still pending", payment.StatePending, result(payment.OutcomePending), nil, payment.StatePending, false, nil},
		{"stale pending after success is a no-op", payment.StateSucceeded, result(payment.OutcomePending), nil, payment.StateSucceeded, false, nil},
		{"the same success again is a no-op", payment.StateSucceeded, result(payment.OutcomeSucceeded), nil, payment.StateSucceeded, false, nil},
		{"a declined attempt not found is a no-op", payment.StateSoftDeclined, payment.ChargeResult{}, notFound, payment.StateSoftDeclined, false, nil},
		{"a canceled attempt not found is a no-op", payment.StateCanceled, payment.ChargeResult{}, notFound, payment.StateCanceled, false, nil},

		{"the gateway forgot a pending charge", payment.StatePending, payment.ChargeResult{}, notFound, payment.StatePending, false, payment.ErrConflictingOutcome},
		{"the gateway forgot a succeeded charge", payment.StateSucceeded, payment.ChargeResult{}, notFound, payment.StateSucceeded, false, payment.ErrConflictingOutcome},
		{"a soft decline later reported succeeded", payment.StateSoftDeclined, result(payment.OutcomeSucceeded), nil, payment.StateSoftDeclined, false, payment.ErrAlreadySettled},
		{"unknown settled for another amount", payment.StateUnknown, payment.ChargeResult{Outcome: payment.OutcomeSucceeded, ProviderPaymentID: ppID, Amount: 1, Currency: rub}, nil, payment.StateUnknown, false, payment.ErrAmountMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := attemptIn(t, tt.from)
			got, changed, err := a.RecordLookup(tt.res, tt.lookupErr, now.Add(3))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, a, got)
				require.False(t, changed)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.State)
			require.Equal(t, tt.wantChanged, changed)
			require.Equal(t, a.IdempotencyKey, got.IdempotencyKey, "the key never changes")
		})
	}

	t.Run("an attempt in a state that does not exist", func(t *testing.T) {
		t.Parallel()
		a := newAttempt(t, payment.PurposeRenewal, 1)
		a.State = "bogus"
		_, _, err := a.RecordLookup(result(payment.OutcomeSucceeded), nil, now)
		require.ErrorIs(t, err, payment.ErrIllegalTransition)
	})
}

func TestAttemptCancel(t *testing.T) {
	t.Parallel()

	t.Run("consent withdrawn: a created attempt the gateway never saw is canceled", func(t *testing.T) {
		t.Parallel()
		got, err := newAttempt(t, payment.PurposeRenewal, 1).Cancel(fmt.Errorf("lookup: %w", payment.ErrNotFound), now)
		require.NoError(t, err)
		require.Equal(t, payment.StateCanceled, got.State)
		require.Equal(t, now, got.SettledAt)
		again, err := got.Cancel(payment.ErrNotFound, now.Add(1))
		require.NoError(t, err, "canceling twice is a no-op")
		require.Equal(t, got, again)
	})

	for _, lookupErr := range []error{nil, errTimeout} {
		t.Run(fmt.Sprintf("no cancel without proof the gateway never saw the key (lookup: %v)", lookupErr), func(t *testing.T) {
			t.Parallel()
			_, err := newAttempt(t, payment.PurposeRenewal, 1).Cancel(lookupErr, now)
			require.ErrorIs(t, err, payment.ErrIllegalTransition)
		})
	}

	for _, s := range allStates {
		if s == payment.StateCreated || s == payment.StateCanceled {
			continue
		}
		t.Run("a "+string(s)+" attempt cannot be canceled", func(t *testing.T) {
			t.Parallel()
			a := attemptIn(t, s)
			got, err := a.Cancel(payment.ErrNotFound, now)
			require.ErrorIs(t, err, payment.ErrIllegalTransition)
			require.Equal(t, a, got)
		})
	}
}

func TestAttemptRetry(t *testing.T) {
	t.Parallel()

	t.Run("3.5 a soft decline is retried as a new attempt under its own key", func(t *testing.T) {
		t.Parallel()
		a := attemptIn(t, payment.StateSoftDeclined)
		next, err := a.Retry("att-2", keyOf(payment.PurposeRenewal, 2), dueAt.Add(payment.Day))
		require.NoError(t, err)
		require.Equal(t, payment.StateCreated, next.State)
		require.Equal(t, 2, next.Number)
		require.Equal(t, "renew:"+subID+":7:2", next.IdempotencyKey)
		require.NotEqual(t, a.IdempotencyKey, next.IdempotencyKey)
		require.Equal(t, a.Amount, next.Amount)
		require.Equal(t, a.Currency, next.Currency)
		require.Equal(t, a.DueAt, next.DueAt, "retries count from the same due time")
		require.NoError(t, payment.VerifyPeriod([]payment.Attempt{a, next}))
	})

	t.Run("retry needs an id", func(t *testing.T) {
		t.Parallel()
		_, err := attemptIn(t, payment.StateSoftDeclined).Retry("", keyOf(payment.PurposeRenewal, 2), now)
		require.ErrorIs(t, err, payment.ErrInvalid)
	})

	t.Run("a canceled attempt (the reason to charge came back: resumed) is followed by a new one", func(t *testing.T) {
		t.Parallel()
		next, err := attemptIn(t, payment.StateCanceled).Retry("att-2", keyOf(payment.PurposeRenewal, 2), now)
		require.NoError(t, err)
		require.Equal(t, 2, next.Number)
	})

	t.Run("3.5 an unapplied success (its money went back) leaves the period unpaid: a new attempt may follow", func(t *testing.T) {
		t.Parallel()
		a := attemptIn(t, payment.StateSucceeded)
		a.Unapplied = true
		next, err := a.Retry("att-2", keyOf(payment.PurposeRenewal, 2), now)
		require.NoError(t, err)
		require.Equal(t, payment.StateCreated, next.State)
		require.False(t, next.Unapplied)
		require.NoError(t, payment.VerifyPeriod([]payment.Attempt{a, withState(next, payment.StateSucceeded)}),
			"one applied success: the unapplied one does not count")
	})

	for _, s := range allStates {
		if s == payment.StateSoftDeclined || s == payment.StateCanceled {
			continue
		}
		name := "a " + string(s) + " attempt is never retried"
		switch s {
		case payment.StateHardDeclined:
			name = "hard decline: never retried"
		case payment.StateUnknown:
			name = "3.5 unknown outcome is reconciled, never recharged under a new key"
		case payment.StateSucceeded:
			name = "3.5 one successful charge per period: a succeeded attempt is not retried"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := attemptIn(t, s).Retry("att-2", keyOf(payment.PurposeRenewal, 2), now)
			require.ErrorIs(t, err, payment.ErrIllegalTransition)
		})
	}
}

func TestVerifyPeriod(t *testing.T) {
	t.Parallel()

	soft1 := attemptIn(t, payment.StateSoftDeclined)
	soft2 := attemptNIn(t, payment.PurposeRenewal, 2, payment.StateSoftDeclined)
	ok3 := attemptNIn(t, payment.PurposeRenewal, 3, payment.StateSucceeded)
	ok1 := attemptIn(t, payment.StateSucceeded)
	ok2 := attemptNIn(t, payment.PurposeRenewal, 2, payment.StateSucceeded)
	created2 := newAttempt(t, payment.PurposeRenewal, 2)
	wrongKey := created2
	wrongKey.IdempotencyKey = "renew:" + subID + ":7:1"
	otherSub := created2
	otherSub.SubscriptionID = "0190b2c3-7d4e-7f00-8000-0000000000b2"
	badState := ok1
	badState.State = "bogus"

	tests := []struct {
		name     string
		attempts []payment.Attempt
		wantErr  error
	}{
		{"no attempts", nil, nil},
		{"3.5 two soft declines then success, in any order", []payment.Attempt{ok3, soft1, soft2}, nil},
		{"3.5 open retry after a soft decline", []payment.Attempt{soft1, created2}, nil},
		{"3.5 two successes in one period", []payment.Attempt{ok1, ok2}, payment.ErrDoubleCharge},
		{"a new attempt after a hard decline", []payment.Attempt{attemptIn(t, payment.StateHardDeclined), created2}, payment.ErrIllegalTransition},
		{"3.5 a new attempt while the outcome is unknown", []payment.Attempt{attemptIn(t, payment.StateUnknown), created2}, payment.ErrIllegalTransition},
		{"3.3 a new attempt while pending", []payment.Attempt{attemptIn(t, payment.StatePending), created2}, payment.ErrIllegalTransition},
		{"a new attempt after success", []payment.Attempt{ok1, created2}, payment.ErrIllegalTransition},
		{"a gap in numbers", []payment.Attempt{soft1, ok3}, payment.ErrInvalid},
		{"a repeated number", []payment.Attempt{soft1, soft1}, payment.ErrInvalid},
		{"a key that is not the attempt's", []payment.Attempt{soft1, wrongKey}, payment.ErrInvalid},
		{"attempts of two subscriptions", []payment.Attempt{soft1, otherSub}, payment.ErrInvalid},
		{"a state that does not exist", []payment.Attempt{badState}, payment.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := payment.VerifyPeriod(tt.attempts)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
}

func TestErrorsAreTyped(t *testing.T) {
	t.Parallel()

	_, err := attemptIn(t, payment.StateSucceeded).Retry("x", keyOf(payment.PurposeRenewal, 2), now)
	var te *payment.TransitionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, "att-1", te.AttemptID)
	require.Equal(t, "retry", te.Move)
	require.Contains(t, err.Error(), "att-1")

	_, err = payment.NewAttemptKey("", "9f86d081884c7d659a2feaa0c55ad015")
	var ve *payment.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "Purpose", ve.Field)
	require.False(t, errors.Is(err, payment.ErrCardData))
}

// withState returns a with state s and, for a succeeded one, the test's provider payment.
func withState(a payment.Attempt, s payment.State) payment.Attempt {
	a.State = s
	if s == payment.StateSucceeded {
		a.ProviderPaymentID = ppID + "-2"
	}
	return a
}
