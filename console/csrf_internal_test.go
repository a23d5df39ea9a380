package console

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCSRFToken(t *testing.T) {
	t.Parallel()
	s := csrfSigner{secret: []byte("0123456789abcdef0123456789abcdef"), ttl: time.Hour}
	issued := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tok := s.token("olga", issued)
	other := csrfSigner{secret: []byte("fedcba9876543210fedcba9876543210"), ttl: time.Hour}

	tests := []struct {
		name     string
		tok, op  string
		at       time.Time
		signer   csrfSigner
		accepted bool
	}{
		{"its operator, at once", tok, "olga", issued, s, true},
		{"its operator, at the end of the TTL", tok, "olga", issued.Add(time.Hour), s, true},
		{"expired", tok, "olga", issued.Add(time.Hour + time.Second), s, false},
		{"from the future beyond the skew", tok, "olga", issued.Add(-2 * time.Minute), s, false},
		{"another operator", tok, "ivan", issued, s, false},
		{"an operator whose ID extends the first (length-prefixed)", tok, "olga2", issued, s, false},
		{"another secret (another deployment)", tok, "olga", issued, other, false},
		{"empty", "", "olga", issued, s, false},
		{"no MAC", tok[:len(tok)-44], "olga", issued, s, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.accepted, tt.signer.valid(tt.tok, tt.op, tt.at))
		})
	}
	require.NotEqual(t, tok, s.token("olga", issued), "every form gets a fresh nonce")
}

func TestDaysLeft(t *testing.T) {
	t.Parallel()
	moscow, err := time.LoadLocation("Europe/Moscow")
	require.NoError(t, err)
	deadline := time.Date(2026, 3, 17, 0, 0, 0, 0, moscow) // 24:00 of Mon 16 Mar
	for _, tt := range []struct {
		now  time.Time
		want int
	}{
		{time.Date(2026, 3, 4, 10, 0, 0, 0, moscow), 12},
		{time.Date(2026, 3, 16, 0, 0, 0, 0, moscow), 0},
		{time.Date(2026, 3, 16, 23, 59, 59, 0, moscow), 0},
		{time.Date(2026, 3, 17, 0, 0, 0, 0, moscow), -1},
		// The same instant seen from UTC (Mon 16 Mar 21:30 UTC is Tue 00:30 in Moscow).
		{time.Date(2026, 3, 16, 21, 30, 0, 0, time.UTC), -1},
	} {
		require.Equal(t, tt.want, daysLeft(tt.now, deadline, moscow), "%v", tt.now)
	}
}
