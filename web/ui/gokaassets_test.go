package ui

import (
	"crypto/sha512"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/internal/kafka"
)

// assetTag finds the scripts and styles of a page with their integrity
// attribute, if any.
var assetTag = regexp.MustCompile(`<(?:script|link)[^>]*?(?:src|href)="([^"]+)"(?:[^>]*?integrity="([^"]+)")?`)

// goka's pages load every script and style from the binary, each with the
// content goka's templates vouch for.
func TestGokaPagesLoadBundledAssets(t *testing.T) {
	srv := serve(t, Config{Topics: kafka.Topics{Events: "events", Group: "customers"}})
	for _, page := range []string{"/goka/", "/goka/monitor/", "/goka/query/"} {
		resp, body := get(t, srv.URL+page)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", page, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, outside := range []string{"googleapis", "bootstrapcdn", "cloudflare", "d3js.org"} {
			if strings.Contains(body, outside) {
				t.Errorf("%s still refers to %s", page, outside)
			}
		}
		tags := assetTag.FindAllStringSubmatch(body, -1)
		if len(tags) < 6 {
			t.Fatalf("%s has %d scripts and styles, want Bootstrap's 3, jQuery, lodash and d3", page, len(tags))
		}
		for _, tag := range tags {
			url, integrity := tag[1], tag[2]
			if !strings.HasPrefix(url, gokaAssetsBase) {
				t.Errorf("%s loads %s, not a bundled asset", page, url)
				continue
			}
			resp, asset := get(t, srv.URL+url)
			if resp.StatusCode != 200 || len(asset) == 0 {
				t.Errorf("GET %s: %d, %d bytes", url, resp.StatusCode, len(asset))
				continue
			}
			if integrity != "" {
				sum := sha512.Sum384([]byte(asset))
				if got := "sha384-" + base64.StdEncoding.EncodeToString(sum[:]); got != integrity {
					t.Errorf("%s hashes to %s, the page expects %s", url, got, integrity)
				}
			}
		}
	}
	// Bootstrap's stylesheet names its fonts relative to itself.
	for _, font := range []string{"glyphicons-halflings-regular.woff2", "glyphicons-halflings-regular.woff"} {
		if resp, _ := get(t, srv.URL+gokaAssetsBase+"bootstrap/3.3.7/fonts/"+font); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "font/") {
			t.Errorf("GET the font %s: %d %s", font, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}
