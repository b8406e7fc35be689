package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

const (
	readToken  = "read-token-0123456789"
	writeToken = "write-token-0123456789"
	wrongToken = "wrong-token-0123456789"
	// authCustomer is registered in every pipeline of these tests, straight
	// through Kafka, so that its reads answer 200.
	authCustomer = "auth-1"
)

// level is the access a route needs, as these tests expect it; it is the
// tests' own, not web's, so that they say what must hold whatever web does.
type level int

const (
	levelOpen level = iota
	levelRead
	levelWrite
)

// callers are the four ways a client can call: without a token, with the
// read token, with the write token, and with a token the server never had.
var callers = []struct{ name, token string }{
	{"no token", ""}, {"read token", readToken}, {"write token", writeToken}, {"wrong token", wrongToken},
}

// granted stands for the route's own answer in accessMatrix.
const granted = 0

// accessMatrix is the expected status of every token setting, level and
// caller (in the order of callers). A write needs a write token as soon as
// any token is set, so read tokens alone leave writes to nobody (serve
// refuses to start that way); reads need a token only when read tokens are
// set, and then a write token reads too.
var accessMatrix = []struct {
	name        string
	read, write []string
	want        map[level][4]int
}{
	{"no tokens", nil, nil, map[level][4]int{
		levelOpen: {granted, granted, granted, granted}, levelRead: {granted, granted, granted, granted}, levelWrite: {granted, granted, granted, granted}}},
	{"read tokens only", []string{readToken}, nil, map[level][4]int{
		levelOpen: {granted, granted, granted, granted}, levelRead: {401, granted, 403, 403}, levelWrite: {401, 403, 403, 403}}},
	{"write tokens only", nil, []string{writeToken}, map[level][4]int{
		levelOpen: {granted, granted, granted, granted}, levelRead: {granted, granted, granted, granted}, levelWrite: {401, 403, granted, 403}}},
	{"read and write tokens", []string{readToken}, []string{writeToken}, map[level][4]int{
		levelOpen: {granted, granted, granted, granted}, levelRead: {401, granted, granted, 403}, levelWrite: {401, 403, granted, 403}}},
}

// accessRoutes are every route of the service with the access it needs and
// its answer when access is granted. %s in a POST path is replaced by a
// customer id of its own per call, so that every granted write registers.
var accessRoutes = []struct {
	method, path string
	level        level
	status       int
}{
	{"GET", "/customers/" + authCustomer, levelRead, 200},
	{"HEAD", "/customers/" + authCustomer, levelRead, 200},
	{"GET", "/customers/" + authCustomer + "?version=1", levelRead, 200},
	{"GET", "/customers/" + authCustomer + "?min_version=1", levelRead, 200},
	{"GET", "/customers/" + authCustomer + "/events", levelRead, 200},
	{"GET", "/customers", levelRead, 200},
	{"GET", "/customers/" + authCustomer + "/watch", levelRead, 200},
	{"GET", "/watch", levelRead, 200},
	{"POST", "/customers/%s/events", levelWrite, 201},
	{"GET", "/goka/", levelRead, 200},
	{"GET", "/goka/monitor/", levelRead, 200},
	{"GET", "/goka/monitor/processor/0", levelRead, 200},
	{"GET", "/goka/query/", levelRead, 200},
	{"GET", "/goka/query/customers-table/" + authCustomer, levelRead, 200},
	{"GET", "/ui/api/dead-letters", levelRead, 200},
	{"GET", "/metrics", levelOpen, 200},
	{"GET", "/healthz", levelOpen, 200},
	{"GET", "/readyz", levelOpen, 200},
	{"GET", "/openapi.yaml", levelOpen, 200},
	{"GET", "/", levelOpen, 200},
	{"GET", "/ui/api.js", levelOpen, 200},
	{"GET", "/goka/assets/jquery/1.11.0/jquery.min.js", levelOpen, 200},
}

// TestAccessMatrix calls every route with every caller under every token
// setting, against the service in process on kfake, and compares the
// status with accessMatrix. Before writes needed a write token whenever
// any token is set, read tokens alone left every POST open.
func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	for si, setting := range accessMatrix {
		t.Run(setting.name, func(t *testing.T) {
			t.Parallel()
			p := startAuthPipeline(t, setting.read, setting.write)
			for _, route := range accessRoutes {
				for ci, caller := range callers {
					path := route.path
					if route.method == http.MethodPost {
						path = fmt.Sprintf(path, fmt.Sprintf("auth-w-%d-%d", si, ci))
					}
					want := setting.want[route.level][ci]
					if want == granted {
						want = route.status
					}
					status, body := authCall(t, p, route.method, path, caller.token)
					if status != want {
						t.Errorf("%s %s with %s: %d, want %d: %.200s", route.method, path, caller.name, status, want, body)
					}
				}
			}
		})
	}
}

// TestReadTokensAloneLeaveNoWriteOpen is the review's attack: with read
// tokens and no write token, an anonymous POST erased a customer (201).
// Now it gets 401 and the customer stays registered.
func TestReadTokensAloneLeaveNoWriteOpen(t *testing.T) {
	t.Parallel()
	p := startAuthPipeline(t, []string{readToken}, nil)
	for _, caller := range callers {
		status, body := authPost(t, p, authCustomer, `{"type":"customer.erased"}`, caller.token)
		if status != http.StatusUnauthorized && status != http.StatusForbidden {
			t.Errorf("POST customer.erased with %s: %d %s, want 401 or 403", caller.name, status, body)
		}
	}
	status, body := authCall(t, p, http.MethodGet, "/customers/"+authCustomer, readToken)
	var c processor.Customer
	if err := json.Unmarshal(body, &c); status != http.StatusOK || err != nil || c.Version != 1 || c.Name != "Ada" {
		t.Errorf("after the refused erasures: %d %s, want the customer at version 1, not erased", status, body)
	}
}

// TestAuthorizationHeaderForms sends the header in forms a client might
// get wrong, and paths that try to reach a guarded route around its
// pattern: none may read without the read token.
func TestAuthorizationHeaderForms(t *testing.T) {
	t.Parallel()
	p := startAuthPipeline(t, []string{readToken}, []string{writeToken})
	tests := []struct {
		name, method, path string
		header             string // the whole Authorization header
		status             int
		fetchSite          string // Sec-Fetch-Site, sent when set
	}{
		{"lower-case scheme", "GET", "/customers/" + authCustomer, "bearer " + readToken, 200, ""},
		{"spaces around the token", "GET", "/customers/" + authCustomer, "Bearer   " + readToken + "  ", 200, ""},
		{"empty bearer", "GET", "/customers/" + authCustomer, "Bearer ", 401, ""},
		{"bearer without a token", "GET", "/customers/" + authCustomer, "Bearer", 401, ""},
		{"basic scheme with the token", "GET", "/customers/" + authCustomer, "Basic " + readToken, 401, ""},
		{"token without a scheme", "GET", "/customers/" + authCustomer, readToken, 401, ""},
		{"a prefix of the token", "GET", "/customers/" + authCustomer, "Bearer " + readToken[:16], 403, ""},
		{"the token and more", "GET", "/customers/" + authCustomer, "Bearer " + readToken + "x", 403, ""},
		{"the token inside another", "GET", "/customers/" + authCustomer, "Bearer x" + readToken, 403, ""},
		{"HEAD is a read", "HEAD", "/customers/" + authCustomer, "", 401, ""},
		{"OPTIONS reaches no handler", "OPTIONS", "/customers/" + authCustomer + "/events", "", 405, ""},
		{"PUT reaches no handler", "PUT", "/customers/" + authCustomer + "/events", "", 405, ""},
		{"dot segments are redirected, not served", "GET", "/customers/x/../" + authCustomer, "", 307, ""},
		{"encoded dot segments match no route", "GET", "/customers/x/%2e%2e/" + authCustomer, "", 404, ""},
		{"double slash", "GET", "//customers/" + authCustomer, "", 307, ""},
		{"goka without its slash", "GET", "/goka", "", 307, ""},
		{"goka through dot segments", "GET", "/ui/../goka/query/", "", 307, ""},
		{"a redirected POST", "POST", "/customers/x/../" + authCustomer + "/events", "", 307, ""},
		{"dead letters below the static files", "GET", "/ui/api/dead-letters/", "", 404, ""},
		{"an encoded slash in the id", "GET", "/customers/" + authCustomer + "%2Fevents", "", 401, ""},
		{"a cross-site write with the write token", "POST", "/customers/auth-x/events", "Bearer " + writeToken, 403, "cross-site"},
		{"a same-origin write with the write token, not JSON", "POST", "/customers/auth-x/events", "Bearer " + writeToken, 415, "same-origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, p.client.Base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			if tt.fetchSite != "" {
				req.Header.Set("Sec-Fetch-Site", tt.fetchSite)
			}
			resp, err := noRedirects(p.client.HTTP).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("%s %s with Authorization %q: %d, want %d: %.200s", tt.method, tt.path, tt.header, resp.StatusCode, tt.status, body)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// startAuthPipeline runs the service with the given tokens and registers
// authCustomer straight through Kafka.
func startAuthPipeline(t *testing.T, read, write []string) *pipeline {
	t.Helper()
	p := startPipeline(t, func(c *web.Config) { c.ReadTokens, c.WriteTokens = read, write })
	p.produce(t, lineRecords([]testkit.Line{binEvent("auth-seed-1", authCustomer, processor.TypeRegistered,
		"2026-06-01T00:00:00Z", `{"name":"Ada","email":"ada@example.com"}`)})...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _ := authCall(t, p, http.MethodGet, "/customers/"+authCustomer, readToken)
		if status == http.StatusOK {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not folded within 30s: last status %d", authCustomer, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// authCall sends one request with token, if any, and returns the status
// and up to 4 KiB of the body. A stream's body is not waited for.
func authCall(t *testing.T, p *pipeline, method, path, token string) (int, []byte) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"type":"customer.registered","data":{"name":"W","email":"w@example.com"}}`)
	}
	return authDo(t, p, method, path, token, body)
}

// authPost posts an event with Content-Type application/json.
func authPost(t *testing.T, p *pipeline, id, event, token string) (int, []byte) {
	t.Helper()
	return authDo(t, p, http.MethodPost, "/customers/"+id+"/events", token, strings.NewReader(event))
}

func authDo(t *testing.T, p *pipeline, method, path, token string, body io.Reader) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, p.client.Base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := p.client.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// noRedirects returns a copy of c that hands redirects back to the test.
func noRedirects(c *http.Client) *http.Client {
	copied := *c
	copied.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &copied
}
