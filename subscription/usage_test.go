package subscription_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smm-gpt/billing/subscription"
	"github.com/smm-gpt/billing/tariff"
)

// period returns period 1 of the pro terms with the given counters.
func period(terms tariff.Terms, usage map[string]subscription.Usage) subscription.Period {
	return subscription.Period{Number: 1, Terms: terms, Start: start, End: end, GrantedAt: start, Usage: usage}
}

func TestConsume(t *testing.T) {
	t.Parallel()
	hard := proTerms(1)
	soft := withOptions(proTerms(1), tariff.Options{SoftLimits: true})
	tests := []struct {
		name     string
		period   subscription.Period
		meter    string
		quantity int64
		wantErr  error
		want     subscription.Usage // the meter's counters after a successful Consume
	}{
		{name: "3.1 consume within the volume", period: period(hard, nil), meter: "generations", quantity: 3, want: subscription.Usage{Used: 3}},
		{name: "3.1 consume exactly the volume left", period: period(hard, map[string]subscription.Usage{"generations": {Used: 60, Reserved: 30}}), meter: "generations", quantity: 10, want: subscription.Usage{Used: 70, Reserved: 30}},
		{name: "3.1 one unit past a hard limit is refused whole", period: period(hard, map[string]subscription.Usage{"generations": {Used: 60, Reserved: 30}}), meter: "generations", quantity: 11, wantErr: subscription.ErrLimitExceeded},
		{name: "3.1 reserved volume counts against a hard limit", period: period(hard, map[string]subscription.Usage{"images": {Reserved: 10}}), meter: "images", quantity: 1, wantErr: subscription.ErrLimitExceeded},
		{name: "3.1 soft limits may be passed", period: period(soft, map[string]subscription.Usage{"images": {Used: 10}}), meter: "images", quantity: 5, want: subscription.Usage{Used: 15}},
		{name: "2.1.10 a meter without a limit in the terms is refused", period: period(hard, nil), meter: "videos", quantity: 1, wantErr: subscription.ErrMeterUnknown},
		{name: "a zero quantity is refused", period: period(hard, nil), meter: "images", quantity: 0, wantErr: subscription.ErrInvalidQuantity},
		{name: "a negative quantity is refused", period: period(hard, nil), meter: "images", quantity: -1, wantErr: subscription.ErrInvalidQuantity},
		{name: "3.1 a huge quantity is refused by a hard limit", period: period(hard, map[string]subscription.Usage{"images": {Used: 1}}), meter: "images", quantity: math.MaxInt64, wantErr: subscription.ErrLimitExceeded},
		{name: "3.1 soft limits: a quantity overflowing the counter is refused", period: period(soft, map[string]subscription.Usage{"images": {Used: 1}}), meter: "images", quantity: math.MaxInt64, wantErr: subscription.ErrInvalidQuantity},
		{name: "corrupt negative counters are refused", period: period(hard, map[string]subscription.Usage{"images": {Used: -5}}), meter: "images", quantity: 1, wantErr: subscription.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			snapshot := copyPeriod(tt.period)
			canErr := subscription.CanConsume(tt.period, tt.meter, tt.quantity)
			got, err := subscription.Consume(tt.period, tt.meter, tt.quantity)
			require.Equal(t, snapshot, tt.period, "Consume never writes into its argument's map")
			if tt.wantErr != nil {
				require.ErrorIs(t, canErr, tt.wantErr)
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, snapshot, got, "3.1 all or nothing: a refused request counts nothing")
				return
			}
			require.NoError(t, canErr)
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Usage[tt.meter])
		})
	}
}

func TestLimitErrorSaysWhatIsLeft(t *testing.T) {
	t.Parallel()
	p := period(proTerms(1), map[string]subscription.Usage{"images": {Used: 6, Reserved: 2}})
	err := subscription.CanConsume(p, "images", 3)
	var le *subscription.LimitError
	require.ErrorAs(t, err, &le)
	require.Equal(t, subscription.LimitError{Meter: "images", Limit: 10, Used: 6, Reserved: 2, Requested: 3}, *le)
	require.EqualError(t, err, "subscription: images: requested 3, 2 left of 10 (6 used, 2 reserved)")
}

func TestShouldExhaust(t *testing.T) {
	t.Parallel()
	soft := withOptions(proTerms(1), tariff.Options{SoftLimits: true})
	tests := []struct {
		name   string
		period subscription.Period
		want   bool
	}{
		{"3.1 nothing used", period(proTerms(1), nil), false},
		{"3.1 one unit left", period(proTerms(1), map[string]subscription.Usage{"generations": {Used: 99}}), false},
		{"3.1 volume used up before the period ends", period(proTerms(1), map[string]subscription.Usage{"generations": {Used: 100}}), true},
		{"3.1 one meter used up is enough", period(proTerms(1), map[string]subscription.Usage{"generations": {Used: 1}, "images": {Used: 10}}), true},
		{"3.1 reserved up to the limit is not used up: it may be released", period(proTerms(1), map[string]subscription.Usage{"images": {Used: 4, Reserved: 6}}), false},
		{"3.1 soft limits never exhaust", period(soft, map[string]subscription.Usage{"images": {Used: 30}}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, subscription.ShouldExhaust(tt.period))
		})
	}
}

func TestReservations(t *testing.T) {
	t.Parallel()
	ttl := 5 * time.Minute
	expires := mid.Add(ttl)
	// reserved returns period 1 with 4 generations used and reservation r1 of 10 open.
	reserved := func(t *testing.T) (subscription.Period, subscription.Reservation) {
		p, r, err := subscription.Reserve(period(proTerms(1), map[string]subscription.Usage{"generations": {Used: 4}}),
			subscription.ReserveParams{ID: "r1", Meter: "generations", Quantity: 10, TTL: ttl}, mid)
		require.NoError(t, err)
		return p, r
	}
	type op func(p subscription.Period, r subscription.Reservation) (subscription.Period, subscription.Reservation, error)
	commit := func(actual int64, now time.Time) op {
		return func(p subscription.Period, r subscription.Reservation) (subscription.Period, subscription.Reservation, error) {
			return subscription.Commit(p, r, actual, now)
		}
	}
	release := func(now time.Time) op {
		return func(p subscription.Period, r subscription.Reservation) (subscription.Period, subscription.Reservation, error) {
			return subscription.Release(p, r, now)
		}
	}
	expire := func(now time.Time) op {
		return func(p subscription.Period, r subscription.Reservation) (subscription.Period, subscription.Reservation, error) {
			return subscription.Expire(p, r, now)
		}
	}
	tests := []struct {
		name      string
		ops       []op // applied in order; all but the last must succeed
		wantErr   error
		wantUsage subscription.Usage
		wantState subscription.ReservationState
	}{
		{name: "a reservation holds its volume", ops: nil, wantUsage: subscription.Usage{Used: 4, Reserved: 10}, wantState: subscription.ReservationOpen},
		{name: "commit moves the actual volume to used and frees the rest", ops: []op{commit(7, mid.Add(time.Minute))}, wantUsage: subscription.Usage{Used: 11}, wantState: subscription.ReservationCommitted},
		{name: "commit of the whole reservation", ops: []op{commit(10, mid)}, wantUsage: subscription.Usage{Used: 14}, wantState: subscription.ReservationCommitted},
		{name: "commit of nothing uses nothing", ops: []op{commit(0, mid)}, wantUsage: subscription.Usage{Used: 4}, wantState: subscription.ReservationCommitted},
		{name: "3.1 commit of more than was reserved is refused", ops: []op{commit(11, mid)}, wantErr: subscription.ErrInvalidQuantity},
		{name: "commit of a negative volume is refused", ops: []op{commit(-1, mid)}, wantErr: subscription.ErrInvalidQuantity},
		{name: "release frees it all", ops: []op{release(mid)}, wantUsage: subscription.Usage{Used: 4}, wantState: subscription.ReservationReleased},
		{name: "release past the TTL still frees it all", ops: []op{release(expires.Add(time.Hour))}, wantUsage: subscription.Usage{Used: 4}, wantState: subscription.ReservationReleased},
		{name: "expiry frees it all", ops: []op{expire(expires)}, wantUsage: subscription.Usage{Used: 4}, wantState: subscription.ReservationExpired},
		{name: "expiry before the TTL is refused", ops: []op{expire(expires.Add(-time.Nanosecond))}, wantErr: subscription.ErrReservationNotExpired},
		{name: "commit at the TTL is refused: the hold lapsed", ops: []op{commit(1, expires)}, wantErr: subscription.ErrReservationExpired},
		{name: "commit twice is refused", ops: []op{commit(1, mid), commit(1, mid)}, wantErr: subscription.ErrReservationResolved},
		{name: "commit after release is refused", ops: []op{release(mid), commit(1, mid)}, wantErr: subscription.ErrReservationResolved},
		{name: "release after commit is refused", ops: []op{commit(1, mid), release(mid)}, wantErr: subscription.ErrReservationResolved},
		{name: "expiry after commit is refused", ops: []op{commit(1, mid), expire(expires)}, wantErr: subscription.ErrReservationResolved},
		{name: "release after expiry is refused", ops: []op{expire(expires), release(expires)}, wantErr: subscription.ErrReservationResolved},
		{name: "expiry twice is refused", ops: []op{expire(expires), expire(expires)}, wantErr: subscription.ErrReservationResolved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, r := reserved(t)
			require.Equal(t, subscription.Reservation{ID: "r1", Period: 1, Meter: "generations", Quantity: 10,
				State: subscription.ReservationOpen, CreatedAt: mid, ExpiresAt: expires}, r)
			var err error
			for i, apply := range tt.ops {
				pBefore, rBefore := copyPeriod(p), r
				var np subscription.Period
				var nr subscription.Reservation
				np, nr, err = apply(p, r)
				require.Equal(t, pBefore, p, "the argument is never written")
				if err != nil {
					require.Equal(t, len(tt.ops)-1, i, "step %d failed early: %v", i, err)
					require.Equal(t, pBefore, np, "a refused step counts nothing")
					require.Equal(t, rBefore, nr, "a refused step leaves the reservation")
					break
				}
				p, r = np, nr
			}
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantUsage, p.Usage["generations"])
			require.Equal(t, tt.wantState, r.State)
			require.Equal(t, tt.wantState != subscription.ReservationOpen, !r.ResolvedAt.IsZero())
		})
	}
}

func TestReserveRefusals(t *testing.T) {
	t.Parallel()
	full := period(proTerms(1), map[string]subscription.Usage{"images": {Used: 8}})
	tests := []struct {
		name    string
		params  subscription.ReserveParams
		wantErr error
	}{
		{"3.1 a reservation past a hard limit is refused", subscription.ReserveParams{ID: "r", Meter: "images", Quantity: 3}, subscription.ErrLimitExceeded},
		{"2.1.10 a reservation of an unknown meter is refused", subscription.ReserveParams{ID: "r", Meter: "videos", Quantity: 1}, subscription.ErrMeterUnknown},
		{"a reservation of nothing is refused", subscription.ReserveParams{ID: "r", Meter: "images"}, subscription.ErrInvalidQuantity},
		{"a reservation needs an ID", subscription.ReserveParams{Meter: "images", Quantity: 1}, subscription.ErrInvalid},
		{"a negative TTL is refused", subscription.ReserveParams{ID: "r", Meter: "images", Quantity: 1, TTL: -time.Second}, subscription.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, r, err := subscription.Reserve(full, tt.params, mid)
			require.ErrorIs(t, err, tt.wantErr)
			require.Equal(t, full, p)
			require.Zero(t, r)
		})
	}
	t.Run("a zero TTL means the default", func(t *testing.T) {
		t.Parallel()
		_, r, err := subscription.Reserve(full, subscription.ReserveParams{ID: "r", Meter: "images", Quantity: 2}, mid)
		require.NoError(t, err)
		require.Equal(t, mid.Add(subscription.DefaultReservationTTL), r.ExpiresAt)
	})
}

func TestReservationResolvedInItsOwnPeriod(t *testing.T) {
	t.Parallel()
	p1, r, err := subscription.Reserve(period(proTerms(1), nil),
		subscription.ReserveParams{ID: "r1", Meter: "images", Quantity: 4}, mid)
	require.NoError(t, err)
	p2 := subscription.Period{Number: 2, Terms: proTerms(2), Start: end, End: next, GrantedAt: end}

	_, _, err = subscription.Commit(p2, r, 4, end)
	require.ErrorIs(t, err, subscription.ErrReservationMismatch, "3.1 volume held in period 1 is settled there, not in period 2")

	got, _, err := subscription.Commit(p1, r, 4, mid.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, subscription.Usage{Used: 4}, got.Usage["images"])

	tampered := r
	tampered.Quantity = 5
	_, _, err = subscription.Release(p1, tampered, mid)
	require.ErrorIs(t, err, subscription.ErrReservationMismatch, "a reservation cannot free more than its period holds")
}
