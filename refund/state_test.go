package refund_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/smm-gpt/billing/refund"
)

var (
	allStates = []refund.State{
		refund.StateReceived, refund.StateVerified, refund.StateExecuting,
		refund.StateRefunded, refund.StateFailed, refund.StateRejected,
	}
	allEvents = []refund.Event{
		refund.EventVerify, refund.EventReject, refund.EventExecute, refund.EventSucceed, refund.EventFail,
	}
)

// TestNextMatrix pins every (state, event) pair: the allowed ones and their target,
// and that every other pair is refused.
func TestNextMatrix(t *testing.T) {
	t.Parallel()
	allowed := map[[2]string]refund.State{
		{"received", "verify"}:   refund.StateVerified,
		{"received", "reject"}:   refund.StateRejected,
		{"verified", "execute"}:  refund.StateExecuting,
		{"verified", "reject"}:   refund.StateRejected,
		{"executing", "succeed"}: refund.StateRefunded,
		{"executing", "fail"}:    refund.StateFailed,
		{"failed", "execute"}:    refund.StateExecuting,
	}
	for _, s := range allStates {
		for _, e := range allEvents {
			want, ok := allowed[[2]string{string(s), string(e)}]
			t.Run(fmt.Sprintf("3.8 %s on %s", e, s), func(t *testing.T) {
				t.Parallel()
				got, err := refund.Next(s, e)
				require.Equal(t, ok, s.Allows(e))
				if ok {
					require.NoError(t, err)
					require.Equal(t, want, got)
					return
				}
				require.ErrorIs(t, err, refund.ErrTransitionNotAllowed)
				var te *refund.TransitionError
				require.ErrorAs(t, err, &te)
				require.Equal(t, refund.TransitionError{From: s, Event: e}, *te)
				require.Equal(t, s, got, "a refused event leaves the state")
			})
		}
	}
}

func TestStateAndChannel(t *testing.T) {
	t.Parallel()
	for _, s := range allStates {
		require.True(t, s.Valid())
		require.Equal(t, s == refund.StateRefunded || s == refund.StateRejected, s.Final())
	}
	require.False(t, refund.State("").Valid())
	_, err := refund.Next("", refund.EventVerify)
	require.ErrorIs(t, err, refund.ErrTransitionNotAllowed)
	_, err = refund.Next(refund.StateReceived, "approve")
	require.ErrorIs(t, err, refund.ErrTransitionNotAllowed)
	require.EqualError(t, err, "refund: approve not allowed in state received")

	for _, c := range []refund.Channel{refund.ChannelEmail, refund.ChannelSupport, refund.ChannelProfile} {
		require.True(t, c.Valid())
	}
	require.False(t, refund.Channel("fax").Valid())
}

// TestRequestLifeProperties drives random event sequences and checks the invariants:
// money goes out only after verification, at most one refund succeeds, nothing happens
// after a final state, and a refused event changes nothing.
func TestRequestLifeProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		s := refund.StateReceived
		verified, succeeded, executions, failures := false, 0, 0, 0
		for _, e := range rapid.SliceOfN(rapid.SampledFrom(allEvents), 0, 30).Draw(t, "events") {
			next, err := refund.Next(s, e)
			if err != nil {
				require.Equal(t, s, next)
				continue
			}
			require.False(t, s.Final(), "no event after a final state")
			switch e {
			case refund.EventVerify:
				verified = true
			case refund.EventExecute:
				require.True(t, verified, "executed before verification")
				require.Equal(t, executions, failures, "a retry only after a failure")
				executions++
			case refund.EventFail:
				failures++
			case refund.EventSucceed:
				succeeded++
			case refund.EventReject:
				require.Zero(t, executions, "a request sent to the gateway is not rejected")
			}
			s = next
		}
		require.LessOrEqual(t, succeeded, 1)
		require.Equal(t, succeeded == 1, s == refund.StateRefunded)
	})
}
