package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/processor"
)

// formErasure is the body a hostile page's <form enctype="text/plain"
// method="post"> sends with one field named `{"type":"customer.erased","pad":"`
// and the value `"}`: the browser joins them with "=", which lands inside
// a JSON string, and posts it cross-site without a preflight.
const formErasure = `{"type":"customer.erased","pad":"="}`

// TestCrossSiteFormPostCannotWrite is the review's attack on a server
// with open writes (no tokens, the default): a page on another site posts
// a text/plain form, or a fetch, to erase a customer. Before writes
// required application/json and refused cross-origin browsers, the first
// case answered 201 and erased the customer. Clients that send neither
// Origin nor Sec-Fetch-Site (curl, SDKs) and the page's own same-origin
// fetch still write.
func TestCrossSiteFormPostCannotWrite(t *testing.T) {
	t.Parallel()
	p := startAuthPipeline(t, nil, nil)
	self := p.client.Base // the server's own origin: http://127.0.0.1:<port>
	tests := []struct {
		name        string
		contentType string
		origin      string
		fetchSite   string
		status      int
		code        string
	}{
		{"a cross-site text/plain form", "text/plain", "http://evil.example", "cross-site", 403, "cross_origin"},
		{"a text/plain form from an old browser", "text/plain", "http://evil.example", "", 403, "cross_origin"},
		{"a form from a sandboxed frame", "text/plain", "null", "", 403, "cross_origin"},
		{"a same-site page on another port", "application/json", "http://127.0.0.1:1", "same-site", 403, "cross_origin"},
		{"a cross-site JSON fetch", "application/json", "http://evil.example", "cross-site", 403, "cross_origin"},
		{"an urlencoded form without Origin", "application/x-www-form-urlencoded", "", "", 415, "unsupported_media_type"},
		{"a multipart form without Origin", "multipart/form-data; boundary=x", "", "", 415, "unsupported_media_type"},
		{"text/plain without Origin", "text/plain", "", "", 415, "unsupported_media_type"},
		{"a same-origin text/plain post", "text/plain", self, "same-origin", 415, "unsupported_media_type"},
		{"no Content-Type", "", "", "", 415, "unsupported_media_type"},
		{"JSON in another charset", "application/json; charset=iso-8859-1", "", "", 415, "unsupported_media_type"},
		{"JSON-looking types are not JSON", "application/json-patch+json", "", "", 415, "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := crossOriginPost(t, p, authCustomer, formErasure, tt.contentType, tt.origin, tt.fetchSite)
			if status != tt.status || code != tt.code {
				t.Errorf("POST %s: %d %q, want %d %q", tt.name, status, code, tt.status, tt.code)
			}
		})
	}
	status, body := authCall(t, p, http.MethodGet, "/customers/"+authCustomer, "")
	var c processor.Customer
	if err := json.Unmarshal(body, &c); status != http.StatusOK || err != nil || c.Version != 1 || c.Name != "Ada" {
		t.Fatalf("after the forged posts: %d %s, want the customer at version 1, not erased", status, body)
	}

	allowed := []struct {
		name, id, contentType, origin, fetchSite string
	}{
		{"curl or an SDK", "co-curl", "application/json", "", ""},
		{"JSON with its charset", "co-charset", "Application/JSON; charset=UTF-8", "", ""},
		{"a structured-mode CloudEvent", "co-cloudevent", "application/cloudevents+json", "", ""},
		{"the page's own fetch", "co-page", "application/json", self, "same-origin"},
		{"the page's own fetch from an old browser", "co-old", "application/json", self, ""},
	}
	for _, tt := range allowed {
		t.Run(tt.name, func(t *testing.T) {
			event := `{"type":"customer.registered","data":{"name":"C","email":"c@example.com"}}`
			if status, code := crossOriginPost(t, p, tt.id, event, tt.contentType, tt.origin, tt.fetchSite); status != http.StatusCreated {
				t.Errorf("POST %s: %d %q, want 201", tt.name, status, code)
			}
		})
	}
}

// crossOriginPost posts body as a browser would with the given headers,
// each left out when empty, and returns the status and error code.
func crossOriginPost(t *testing.T, p *pipeline, id, body, contentType, origin, fetchSite string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.client.Base+"/customers/"+id+"/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{"Content-Type": contentType, "Origin": origin, "Sec-Fetch-Site": fetchSite} {
		if value != "" {
			req.Header.Set(name, value)
		}
	}
	resp, err := p.client.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var apiErr struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(data, &apiErr) // a 201's body has no error code
	return resp.StatusCode, apiErr.Error
}
