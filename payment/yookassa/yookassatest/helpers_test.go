package yookassatest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testBundle is one test's simulator.
type testBundle struct {
	srv *Server
}

func setup(t *testing.T, opts ...Option) *testBundle {
	t.Helper()
	srv := New(opts...)
	t.Cleanup(srv.Close)
	return &testBundle{srv: srv}
}

// reply is a raw HTTP answer.
type reply struct {
	status int
	body   []byte
	err    error
}

// json decodes the body into a generic map.
func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body %s", r.body)
	return m
}

// apiError decodes an error body.
func (r reply) apiError(t *testing.T) ErrorBody {
	t.Helper()
	var e ErrorBody
	require.NoError(t, json.Unmarshal(r.body, &e), "body %s", r.body)
	require.Equal(t, "error", e.Type)
	require.NotEmpty(t, e.ID)
	return e
}

// request sends a raw request with the shop's credentials; key "" sends no Idempotence-Key.
func (b *testBundle) request(t *testing.T, method, path, key string, body any) reply {
	t.Helper()
	return b.requestAs(t, b.srv.ShopID(), b.srv.SecretKey(), method, path, key, body)
}

func (b *testBundle) requestAs(t *testing.T, user, pass, method, path, key string, body any) reply {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(v)
	case string:
		rd = strings.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.srv.URL()+path, rd)
	require.NoError(t, err)
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotence-Key", key)
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, body: raw}
}

// createPayment posts body under key and requires 200, returning the payment.
func (b *testBundle) createPayment(t *testing.T, key string, body map[string]any) Payment {
	t.Helper()
	r := b.request(t, http.MethodPost, "/payments", key, body)
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	var p Payment
	require.NoError(t, json.Unmarshal(r.body, &p))
	return p
}

func (b *testBundle) getPayment(t *testing.T, id string) Payment {
	t.Helper()
	r := b.request(t, http.MethodGet, "/payments/"+id, "", nil)
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	var p Payment
	require.NoError(t, json.Unmarshal(r.body, &p))
	return p
}

// receiptFor is a valid one-line receipt of value in RUB.
func receiptFor(value string) map[string]any {
	return map[string]any{
		"customer": map[string]any{"email": "user@example.com"},
		"items": []any{map[string]any{
			"description":     "Pro tariff, 1 month",
			"quantity":        "1.00",
			"amount":          map[string]any{"value": value, "currency": "RUB"},
			"vat_code":        12,
			"payment_mode":    "full_prepayment",
			"payment_subject": "service",
		}},
	}
}

// autopayment is a valid autopayment request of 990.00 RUB from a saved card.
func autopayment(methodID string) map[string]any {
	return map[string]any{
		"amount":            map[string]any{"value": "990.00", "currency": "RUB"},
		"capture":           true,
		"payment_method_id": methodID,
		"description":       "Pro, 1 month",
		"metadata":          map[string]any{"billing_key": "k1", "subscription": "sub-1"},
		"receipt":           receiptFor("990.00"),
	}
}

// checkout is a valid first payment that saves the card.
func checkout() map[string]any {
	return map[string]any{
		"amount":              map[string]any{"value": "990.00", "currency": "RUB"},
		"capture":             true,
		"save_payment_method": true,
		"confirmation":        map[string]any{"type": "redirect", "return_url": "https://shop.example/return"},
		"description":         "Pro, 1 month",
		"receipt":             receiptFor("990.00"),
	}
}

// refundOf is a valid refund request of value.
func refundOf(paymentID, value string) map[string]any {
	return map[string]any{
		"payment_id":  paymentID,
		"amount":      map[string]any{"value": value, "currency": "RUB"},
		"description": "refund, TERMS 3.7",
		"receipt":     receiptFor(value),
	}
}

// keysOf returns the keys of a JSON object.
func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// fixtures is where the official spec and SDK fixtures are kept outside the repository.
const fixtures = "/work/shared/fixtures/yookassa"

// readFixture reads a file under fixtures, skipping the test when it is absent.
func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(fixtures + "/" + name)
	if os.IsNotExist(err) {
		t.Skipf("fixture %s not on this machine", name)
	}
	require.NoError(t, err)
	return raw
}

// specSchema returns the lines of one schema of the OpenAPI spec (components/schemas).
func specSchema(t *testing.T, name string) []string {
	t.Helper()
	raw := readFixture(t, "spec/yookassa-openapi-specification.yaml")
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines []string
	in := false
	for sc.Scan() {
		line := sc.Text()
		if line == "    "+name+":" {
			in = true
			continue
		}
		if in && strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     ") {
			break
		}
		if in {
			lines = append(lines, line)
		}
	}
	require.NotEmpty(t, lines, "schema %s not found in the spec", name)
	return lines
}

// specProperties returns the property names of a schema (the keys indented under
// "properties:" at the schema's first level) and its required list.
func specProperties(t *testing.T, name string) (props, required []string) {
	lines := specSchema(t, name)
	mode := ""
	for _, l := range lines {
		switch {
		case l == "      properties:":
			mode = "props"
		case l == "      required:":
			mode = "required"
		case strings.HasPrefix(l, "        ") && !strings.HasPrefix(l, "         ") && mode == "props" && strings.HasSuffix(l, ":"):
			props = append(props, strings.TrimSuffix(strings.TrimSpace(l), ":"))
		case strings.HasPrefix(l, "      - ") && mode == "required":
			required = append(required, strings.Trim(strings.TrimPrefix(l, "      - "), `"`))
		case !strings.HasPrefix(l, "        "):
			mode = ""
		}
	}
	return props, required
}

// specEnum returns the enum values of a property of a schema.
func specEnum(t *testing.T, schema, property string) []string {
	lines := specSchema(t, schema)
	var out []string
	in, enum := false, false
	for _, l := range lines {
		trimmed := strings.TrimSpace(l)
		if trimmed == property+":" {
			in = true
			continue
		}
		if in && trimmed == "enum:" {
			enum = true
			continue
		}
		if enum {
			if !strings.HasPrefix(trimmed, "- ") {
				break
			}
			out = append(out, strings.Trim(strings.TrimPrefix(trimmed, "- "), `"`))
		}
	}
	require.NotEmpty(t, out, "enum %s.%s not found", schema, property)
	return out
}

// keyOf turns a test's name into an Idempotence-Key: letters and digits kept, the rest '-',
// at most 64 characters.
func keyOf(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b[i] = '-'
		}
	}
	return string(b[:min(len(b), 64)])
}
