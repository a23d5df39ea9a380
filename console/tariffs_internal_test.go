package console

import "testing"

// TestPeriodsKeepAgreesWithTheNumber: the 2.1.6 sentence's noun and verb agree with N as
// Russian wants (1, 2–4, 5–20, 11–14, 21, 111).
func TestPeriodsKeepAgreesWithTheNumber(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{
		0:   "0 оплаченных периодов сохраняют",
		1:   "1 оплаченный период сохраняет",
		2:   "2 оплаченных периода сохраняют",
		4:   "4 оплаченных периода сохраняют",
		5:   "5 оплаченных периодов сохраняют",
		11:  "11 оплаченных периодов сохраняют",
		12:  "12 оплаченных периодов сохраняют",
		21:  "21 оплаченный период сохраняет",
		22:  "22 оплаченных периода сохраняют",
		111: "111 оплаченных периодов сохраняют",
	} {
		if got := periodsKeep(n); got != want {
			t.Errorf("periodsKeep(%d) = %q, want %q", n, got, want)
		}
	}
}
