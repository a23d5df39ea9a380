package billing

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/smm-gpt/billing/calendar"
	"github.com/smm-gpt/billing/payment"
)

// TestConfigDefaults pins each Config field's default in three places at once: what New
// fills in for the zero value, the last sentence of the field's comment in config.go, and
// the field's row in the README's Configuration table. The rows are keyed by field name
// and the fields are read with reflect, so a new field without a row fails here.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()

	// A pool that is never connected: New does no I/O.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	type row struct {
		doc    string                          // how the field's comment ends: "Required." or the start of its "Defaults to …" sentence
		readme string                          // the default column of the field's README row
		check  func(t *testing.T, got *Config) // got: what New made of Config{Location: time.UTC}
	}
	none := func(field string) func(t *testing.T, got *Config) {
		return func(t *testing.T, got *Config) {
			require.True(t, reflect.ValueOf(*got).FieldByName(field).IsZero(), "%s stays unset", field)
		}
	}
	rows := map[string]row{
		"Location": {"Required.", "required", func(t *testing.T, _ *Config) {
			_, err := New(pool, Config{})
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			require.True(t, ce.Has("Location"), "a nil Location is refused: %v", err)
		}},
		"Clock": {"Defaults to [SystemClock].", "`SystemClock`", func(t *testing.T, got *Config) {
			require.Equal(t, Clock(SystemClock{}), got.Clock)
		}},
		"Logger": {"Defaults to a logger that discards them ([slog.DiscardHandler]).", "discards (`slog.DiscardHandler`)", func(t *testing.T, got *Config) {
			require.NotNil(t, got.Logger)
			require.Equal(t, slog.DiscardHandler, got.Logger.Handler())
		}},
		"TracerProvider": {"Defaults to a no-op provider.", "no-op", func(t *testing.T, got *Config) {
			require.IsType(t, tracenoop.TracerProvider{}, got.TracerProvider)
		}},
		"MeterProvider": {"Defaults to a no-op provider.", "no-op", func(t *testing.T, got *Config) {
			require.IsType(t, metricnoop.MeterProvider{}, got.MeterProvider)
		}},
		"Gateway": {"Defaults to none:", "none", none("Gateway")},
		"Dunning": {"Defaults to [payment.DefaultDunningSchedule] (1, 3 and 5 days).", "`payment.DefaultDunningSchedule` (1, 3 and 5 days)", func(t *testing.T, got *Config) {
			require.Equal(t, payment.DefaultDunningSchedule(), got.Dunning)
			require.Equal(t, []time.Duration{24 * time.Hour, 3 * 24 * time.Hour, 5 * 24 * time.Hour}, got.Dunning.Delays)
		}},
		"VAT": {"Defaults to [payment.VATNone].", "`payment.VATNone`", func(t *testing.T, got *Config) {
			require.Equal(t, payment.VATNone, got.VAT)
		}},
		"ReceiptContact": {"Defaults to none:", "none", none("ReceiptContact")},
		"Calendar": {"Defaults to [calendar.Russia] (the Russian production calendar the library ships).", "`calendar.Russia`", func(t *testing.T, got *Config) {
			require.Equal(t, calendar.BusinessCalendar(calendar.Russia()), got.Calendar)
		}},
		"OnRefundEscalation":          {"Defaults to none.", "none", none("OnRefundEscalation")},
		"OnAccountDeletionEscalation": {"Defaults to none.", "none", none("OnAccountDeletionEscalation")},
		"OnEvent":                     {"Defaults to none:", "none", none("OnEvent")},
		"RenewalNotice": {"Defaults to [DefaultRenewalNotice] (3 days).", "`DefaultRenewalNotice` (3 days)", func(t *testing.T, got *Config) {
			require.Equal(t, DefaultRenewalNotice, got.RenewalNotice)
			require.Equal(t, 3*24*time.Hour, got.RenewalNotice)
		}},
		"UsageThresholds": {"Defaults to [DefaultUsageThresholds] (80 and 100).", "`DefaultUsageThresholds` (80 and 100)", func(t *testing.T, got *Config) {
			require.Equal(t, []int{80, 100}, got.UsageThresholds)
			require.Equal(t, DefaultUsageThresholds, got.UsageThresholds)
			got.UsageThresholds[0] = 1
			require.Equal(t, []int{80, 100}, DefaultUsageThresholds, "the engine keeps a copy, never the package's slice")
		}},
		"Queue": {`Defaults to [river.QueueDefault] ("default").`, "`river.QueueDefault` (\"default\")", func(t *testing.T, got *Config) {
			require.Equal(t, river.QueueDefault, got.Queue)
			require.Equal(t, "default", got.Queue)
		}},
		"Priority": {"Defaults to [river.PriorityDefault] (1).", "`river.PriorityDefault` (1)", func(t *testing.T, got *Config) {
			require.Equal(t, river.PriorityDefault, got.Priority)
			require.Equal(t, 1, got.Priority)
		}},
		"RenewalBatchSize": {"Defaults to [DefaultRenewalBatchSize] (100).", "`DefaultRenewalBatchSize` (100)", func(t *testing.T, got *Config) {
			require.Equal(t, DefaultRenewalBatchSize, got.RenewalBatchSize)
			require.Equal(t, 100, got.RenewalBatchSize)
		}},
		"ConsumeBatchSize": {"Defaults to [DefaultConsumeBatchSize] (64).", "`DefaultConsumeBatchSize` (64)", func(t *testing.T, got *Config) {
			require.Equal(t, DefaultConsumeBatchSize, got.ConsumeBatchSize)
			require.Equal(t, 64, got.ConsumeBatchSize)
		}},
		"RetentionHorizon": {"Defaults to [DefaultRetentionHorizon] (400 days):", "`DefaultRetentionHorizon` (400 days)", func(t *testing.T, got *Config) {
			require.Equal(t, DefaultRetentionHorizon, got.RetentionHorizon)
			require.Equal(t, 400*24*time.Hour, got.RetentionHorizon)
		}},
		"SkipRiverMigrations": {"Defaults to false:", "false", none("SkipRiverMigrations")},
		"ClaimRenewals":       {"Defaults to false:", "false", none("ClaimRenewals")},
		"ClaimChunk": {"Defaults to [RenewalClaimChunk] (100).", "`RenewalClaimChunk` (100)", func(t *testing.T, got *Config) {
			require.Equal(t, RenewalClaimChunk, got.ClaimChunk)
			require.Equal(t, 100, got.ClaimChunk)
		}},
		"ClaimLease": {"Defaults to [RenewalClaimLease] (2 minutes).", "`RenewalClaimLease` (2 minutes)", func(t *testing.T, got *Config) {
			require.Equal(t, RenewalClaimLease, got.ClaimLease)
			require.Equal(t, 2*time.Minute, got.ClaimLease)
		}},
	}

	var fields []string
	for f := range reflect.TypeFor[Config]().Fields() {
		if f.IsExported() {
			fields = append(fields, f.Name)
		}
	}
	for name := range rows {
		require.Contains(t, fields, name, "a row for a field Config does not have")
	}
	docs := configFieldDocs(t)
	readme := readmeConfigRows(t)
	for name := range readme {
		require.Contains(t, fields, name, "the README's Configuration table has a row for a field Config does not have")
	}

	engine, err := New(pool, Config{Location: time.UTC})
	require.NoError(t, err)
	got := engine.cfg

	for _, name := range fields {
		t.Run(name, func(t *testing.T) {
			r, ok := rows[name]
			require.True(t, ok, "Config.%s has no row here: give it a default (withDefaults), the doc sentence and the README row", name)

			t.Run("New fills the default", func(t *testing.T) { r.check(t, &got) })

			t.Run("doc ends with it", func(t *testing.T) {
				doc := docs[name]
				require.NotEmpty(t, doc, "Config.%s has no doc comment", name)
				last := lastSentence(doc)
				require.True(t, strings.HasPrefix(last, r.doc), "Config.%s's comment should end %q…, ends %q", name, r.doc, last)
				require.LessOrEqual(t, strings.Count(doc, "Defaults to"), 1, "one default sentence in Config.%s's comment", name)
				require.NotRegexp(t, oldDefaultWording, doc, "Config.%s: one wording, \"Defaults to …\"", name)
			})

			t.Run("README row agrees", func(t *testing.T) {
				require.Equal(t, r.readme, readme[name], "README Configuration row of %s, default column", name)
			})
		})
	}
}

// oldDefaultWording matches the ways config.go used to state a default besides
// "Defaults to …".
var oldDefaultWording = regexp.MustCompile(`\b(Zero value:|Nil means|Empty means|Default:|Default [A-Z])`)

// configFieldDocs returns each Config field's doc comment in config.go, as text.
func configFieldDocs(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, parser.ParseComments)
	require.NoError(t, err)
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Config" {
			return true
		}
		for _, fl := range ts.Type.(*ast.StructType).Fields.List {
			for _, name := range fl.Names {
				docs[name.Name] = fl.Doc.Text()
			}
		}
		return false
	})
	require.NotEmpty(t, docs, "type Config in config.go")
	return docs
}

// lastSentence returns the last sentence of doc, leaving out a final "Deprecated:"
// paragraph (which Go's convention puts last).
func lastSentence(doc string) string {
	paras := strings.Split(strings.TrimSpace(doc), "\n\n")
	if len(paras) > 1 && strings.HasPrefix(paras[len(paras)-1], "Deprecated:") {
		paras = paras[:len(paras)-1]
	}
	text := strings.Join(strings.Fields(paras[len(paras)-1]), " ")
	i := max(strings.LastIndex(text, ". "), strings.LastIndex(text, ".) "))
	if i < 0 {
		return text
	}
	return strings.TrimLeft(text[i+1:], ") ")
}

// readmeConfigRows returns the README's Configuration table: field → default column.
func readmeConfigRows(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	require.True(t, ok, "README has a Configuration section")
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		field := strings.Trim(strings.TrimSpace(cells[1]), "`")
		_, twice := rows[field]
		require.False(t, twice, "README Configuration: %s has two rows", field)
		rows[field] = strings.TrimSpace(cells[2])
	}
	return rows
}
