package billing

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smm-gpt/billing/internal/store"
	"github.com/smm-gpt/billing/ledger"
)

// This file opens the ledger's unexported seams (what the payment and refund commands use)
// to the external tests of package billing_test.

// PostForPeriodTx is postForPeriod, for tests.
func (b *Books) PostForPeriodTx(ctx context.Context, tx pgx.Tx, subscriptionID string, period int, t ledger.Transaction) (ledger.Transaction, bool, error) {
	return b.e.postForPeriod(ctx, tx, subscriptionID, period, t)
}

// ScheduleRecognitionTx is scheduleRecognition, for tests.
func (b *Books) ScheduleRecognitionTx(ctx context.Context, tx pgx.Tx, subscriptionID string, period int, at time.Time) error {
	return b.e.scheduleRecognition(ctx, tx, subscriptionID, period, at)
}

// PeriodLedgerForTest is periodLedgerTx in a transaction of its own, for tests.
func (b *Books) PeriodLedgerForTest(ctx context.Context, subscriptionID string, period int) (charged, refunded, recognized int64, err error) {
	err = store.InTx(ctx, b.e.pool, func(tx pgx.Tx) error {
		pl, err := b.e.periodLedgerTx(ctx, tx, subscriptionID, period)
		charged, refunded, recognized = pl.Charged, pl.Refunded, pl.Recognized
		return err
	})
	return charged, refunded, recognized, err
}

// CheckpointForTest is the ledger checkpoint job's work (checkpointLedger), waiting at most
// wait for the horizon; it returns how many checkpoints it wrote.
func (b *Books) CheckpointForTest(ctx context.Context, wait time.Duration) (int64, error) {
	return b.e.checkpointLedger(ctx, wait)
}
