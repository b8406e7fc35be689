package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/web"
)

func TestBearerTokens(t *testing.T) {
	const (
		readToken  = "read-token-0123456789"
		writeToken = "write-token-0123456789"
	)
	tests := []struct {
		name        string
		read, write []string
		method      string
		path, token string
		status      int
	}{
		{"writes need a token", nil, []string{writeToken}, "POST", "/customers/a-1/events", "", 401},
		{"writes refuse a wrong token", nil, []string{writeToken}, "POST", "/customers/a-1/events", "nope-nope-nope-nope", 403},
		{"writes refuse a read token", []string{readToken}, []string{writeToken}, "POST", "/customers/a-1/events", readToken, 403},
		{"writes take the write token", nil, []string{writeToken}, "POST", "/customers/a-1/events", writeToken, 201},
		{"reads open without read tokens", nil, []string{writeToken}, "GET", "/customers/nobody", "", 404},
		{"reads need a token when set", []string{readToken}, []string{writeToken}, "GET", "/customers/nobody", "", 401},
		{"reads refuse a wrong token", []string{readToken}, nil, "GET", "/customers", "nope-nope-nope-nope", 403},
		{"reads take the read token", []string{readToken}, nil, "GET", "/customers/nobody", readToken, 404},
		{"reads take the write token", []string{readToken}, []string{writeToken}, "GET", "/watch?x", writeToken, 200},
		{"probes stay open", []string{readToken}, []string{writeToken}, "GET", "/readyz", "", 200},
		{"metrics stay open", []string{readToken}, []string{writeToken}, "GET", "/metrics", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startPipeline(t, func(c *web.Config) { c.ReadTokens, c.WriteTokens = tt.read, tt.write })
			var body *strings.Reader
			if tt.method == http.MethodPost {
				body = strings.NewReader(`{"type":"customer.registered","data":{"name":"A","email":"a@example.com"}}`)
			} else {
				body = strings.NewReader("")
			}
			req, err := http.NewRequest(tt.method, p.client.Base+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := p.client.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}
