package refund

// State is where a refund request stands. The zero State is not a state; a new request
// starts in StateReceived.
type State string

// The states of a refund request.
const (
	// StateReceived: recorded with its received instant; the payout deadline runs
	// (TERMS 3.8).
	StateReceived State = "received"
	// StateVerified: an operator verified the customer (TERMS 3.8) and approved the refund.
	StateVerified State = "verified"
	// StateExecuting: the refund was sent to the gateway and its outcome is awaited
	// (a pending refund completes on the gateway's webhook).
	StateExecuting State = "executing"
	// StateRefunded: the gateway confirmed the refund. Final.
	StateRefunded State = "refunded"
	// StateFailed: the gateway refused or the call failed; the money is still owed, so
	// the only way on is a retry (EventExecute).
	StateFailed State = "failed"
	// StateRejected: the operator refused the request (the customer could not be
	// verified, or the request does not qualify). Final.
	StateRejected State = "rejected"
)

// Event is something that happens to a refund request.
type Event string

// The events of a refund request.
const (
	// EventVerify: an operator verified the customer. received → verified.
	EventVerify Event = "verify"
	// EventReject: an operator refused the request. received, verified → rejected.
	EventReject Event = "reject"
	// EventExecute: the refund is sent to the gateway, first or again.
	// verified, failed → executing.
	EventExecute Event = "execute"
	// EventSucceed: the gateway confirmed. executing → refunded.
	EventSucceed Event = "succeed"
	// EventFail: the gateway refused or the call failed. executing → failed.
	EventFail Event = "fail"
)

// transitions is the whole state machine: from a state, the states each event leads to.
var transitions = map[State]map[Event]State{
	StateReceived:  {EventVerify: StateVerified, EventReject: StateRejected},
	StateVerified:  {EventExecute: StateExecuting, EventReject: StateRejected},
	StateExecuting: {EventSucceed: StateRefunded, EventFail: StateFailed},
	StateFailed:    {EventExecute: StateExecuting},
	StateRefunded:  {},
	StateRejected:  {},
}

// Next returns the state a request in state s moves to on event e. When s does not
// allow e, when s is not a state or e not an event, it returns s itself and a
// *TransitionError (errors.Is ErrTransitionNotAllowed). It never panics.
//
// A refund is executed only after verification, and never twice at once: executing
// allows only the gateway's answer, and a retry must wait for a failure.
func Next(s State, e Event) (State, error) {
	if to, ok := transitions[s][e]; ok {
		return to, nil
	}
	return s, &TransitionError{From: s, Event: e}
}

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// Final reports whether s accepts no further event: refunded or rejected.
func (s State) Final() bool { return s == StateRefunded || s == StateRejected }

// Allows reports whether state s accepts event e.
func (s State) Allows(e Event) bool {
	_, ok := transitions[s][e]
	return ok
}

// Channel is how a refund request reached the operator. TERMS 3.7 accepts a free-form
// email; support tickets and the profile page are the other ways in.
type Channel string

// The channels of a refund request.
const (
	ChannelEmail   Channel = "email"
	ChannelSupport Channel = "support"
	ChannelProfile Channel = "profile"
)

// Valid reports whether c is one of the channels.
func (c Channel) Valid() bool {
	return c == ChannelEmail || c == ChannelSupport || c == ChannelProfile
}
