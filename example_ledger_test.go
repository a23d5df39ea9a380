package billing_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"time"

	"github.com/smm-gpt/billing"
)

// ExampleBooks_TrialBalance reads the double-entry ledger after one paid month: the charge
// went to deferred revenue, and the recognition job at the period end moved it to revenue.
// The accounts always sum to zero.
func ExampleBooks_TrialBalance() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 500); err != nil {
			fmt.Println(err)
			return
		}
		id, err := ex.checkout(ctx, "user-42")
		if err != nil {
			fmt.Println(err)
			return
		}
		if _, err := ex.engine.SetAutoRenew(ctx, id, false, "customer:user-42"); err != nil {
			fmt.Println(err)
			return
		}
		if _, err := ex.runner.RunUntil(ctx, ex.clock.Now().AddDate(0, 2, 0)); err != nil {
			fmt.Println(err)
			return
		}
		tb, err := ex.engine.Ledger().TrialBalance(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, b := range tb {
			fmt.Printf("%-12s debits %6d credits %6d\n", b.Account.Code, b.Debits, b.Credits)
		}
		fmt.Println("net:", tb.NetByCurrency()["RUB"])
	})
	// Output:
	// deferred:RUB debits  99000 credits  99000
	// provider:RUB debits  99000 credits      0
	// revenue:RUB  debits      0 credits  99000
	// net: 0
}

// ExampleBooks_ExportCSV exports a month of postings for the accountant: one CSV row per
// posting, by posted time, each transaction balanced. The month is over, so exporting it
// again gives the same rows.
func ExampleBooks_ExportCSV() {
	runExample(func(ctx context.Context, ex *exampleEnv) {
		if err := ex.publish(ctx, 500); err != nil {
			fmt.Println(err)
			return
		}
		id, err := ex.checkout(ctx, "user-42")
		if err != nil {
			fmt.Println(err)
			return
		}
		if _, err := ex.engine.SetAutoRenew(ctx, id, false, "customer:user-42"); err != nil {
			fmt.Println(err)
			return
		}
		if _, err := ex.runner.RunUntil(ctx, time.Date(2026, 5, 1, 0, 0, 0, 0, ex.moscow)); err != nil {
			fmt.Println(err)
			return
		}
		var buf bytes.Buffer
		from, to := time.Date(2026, 3, 1, 0, 0, 0, 0, ex.moscow), time.Date(2026, 5, 1, 0, 0, 0, 0, ex.moscow)
		if err := ex.engine.Ledger().ExportCSV(ctx, &buf, from, to); err != nil {
			fmt.Println(err)
			return
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			fmt.Println(err)
			return
		}
		col := map[string]int{}
		for i, name := range rows[0] {
			col[name] = i
		}
		fmt.Println("posted_at ref_kind account debit credit (5 of", len(billing.LedgerCSVHeader), "columns)")
		for _, r := range rows[1:] {
			fmt.Println(r[col["posted_at"]], r[col["ref_kind"]], r[col["account"]], r[col["debit"]], r[col["credit"]])
		}
	})
	// Output:
	// posted_at ref_kind account debit credit (5 of 14 columns)
	// 2026-03-02T10:00:00+03:00 payment provider:RUB 990.00 0.00
	// 2026-03-02T10:00:00+03:00 payment deferred:RUB 0.00 990.00
	// 2026-04-02T10:00:00+03:00 recognition deferred:RUB 990.00 0.00
	// 2026-04-02T10:00:00+03:00 recognition revenue:RUB 0.00 990.00
}
