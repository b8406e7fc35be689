package ui

import (
	"bytes"
	"embed"
	"html"
	"net/http"
	"strconv"
	"strings"
)

// gokaAssetFiles are the scripts and styles goka's pages load, bundled so
// that the pages work where the service has no internet access. They are
// byte for byte the files of the CDNs goka's templates name (Bootstrap
// 3.3.7, jQuery 1.11.0, lodash 4.17.1, d3 4.13.0, from npm, each with its
// licence), so the templates' integrity attributes still hold.
//
//go:embed gokaassets
var gokaAssetFiles embed.FS

// gokaAssetsBase is where the bundled assets are served.
const gokaAssetsBase = gokaBase + "/assets/"

// gokaAssetURLs points the head of goka's pages at the bundled assets.
// Google's fonts are dropped for the browser's own.
var gokaAssetURLs = strings.NewReplacer(
	`<link href='https://fonts.googleapis.com/css?family=Open+Sans+Condensed:300|Open+Sans' rel='stylesheet' type='text/css'>`, "",
	"https://maxcdn.bootstrapcdn.com/bootstrap/3.3.7/", gokaAssetsBase+"bootstrap/3.3.7/",
	"//ajax.googleapis.com/ajax/libs/jquery/1.11.0/jquery.min.js", gokaAssetsBase+"jquery/1.11.0/jquery.min.js",
	"https://cdnjs.cloudflare.com/ajax/libs/lodash.js/4.17.1/lodash.min.js", gokaAssetsBase+"lodash/4.17.1/lodash.min.js",
	"https://d3js.org/d3.v4.min.js", gokaAssetsBase+"d3/4.13.0/d3.min.js",
)

// localAssets serves h, a goka page handler, with the asset addresses in
// its HTML rewritten. goka's pages are small, so each is buffered whole.
func localAssets(w http.ResponseWriter, r *http.Request, h http.Handler) {
	page := &bufferedPage{header: http.Header{}}
	h.ServeHTTP(page, r)
	body := page.body.Bytes()
	ct := page.header.Get("Content-Type")
	if ct == "" && len(body) > 0 {
		ct = http.DetectContentType(body)
		page.header.Set("Content-Type", ct)
	}
	if strings.HasPrefix(ct, "text/html") {
		body = []byte(withEventfoldBar(gokaAssetURLs.Replace(string(body)), r.URL.Path))
		page.header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	for k, v := range page.header {
		w.Header()[k] = v
	}
	w.WriteHeader(page.statusOrOK())
	_, _ = w.Write(body) // the client went away; nothing left to tell it
}

// gokaNote explains the two figures of goka's monitor that look wrong on
// a healthy service. goka computes "offset lag" as the high-water mark (the
// next offset to be written) minus the last offset read, and refreshes it
// once a minute: a partition that has read everything shows 1. It marks a
// partition "stalled" when no record arrived for two minutes: an idle
// partition, not a stuck one.
const gokaNote = `goka's monitor counts “offset lag” from the last offset read, so a partition that has read everything shows ` +
	`offset lag 1, and it refreshes that figure once a minute; “stalled” means no record arrived for two minutes, ` +
	`an idle partition, not a stuck one. The lag eventfold reports, from the next offset to read, is on the `

// withEventfoldBar gives a goka page eventfold's name in its title and a
// bar on top that leads back to eventfold's page and explains goka's lag.
// Links are relative to the page's path, so that the pages work behind a
// proxy that mounts the service under a prefix.
func withEventfoldBar(page, path string) string {
	root := strings.Repeat("../", max(strings.Count(path, "/")-1, 1))
	bar := `<div class="alert alert-info" style="margin:0;border-radius:0">` +
		`<a class="eventfold-back" href="` + root + `"><strong>← eventfold</strong></a> · ` +
		`<span id="eventfold-note">` + html.EscapeString(gokaNote) + `<a href="` + root + `#/operations">operations page</a>.</span></div>`
	page = strings.Replace(page, "<body>", "<body>"+bar, 1)
	if i := strings.Index(page, "<title>"); i >= 0 {
		if j := strings.Index(page[i:], "</title>"); j >= 0 {
			page = page[:i+j] + " · goka · eventfold" + page[i+j:]
		}
	}
	return page
}

// bufferedPage is an http.ResponseWriter that keeps the response.
type bufferedPage struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (p *bufferedPage) Header() http.Header { return p.header }

func (p *bufferedPage) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

func (p *bufferedPage) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return p.body.Write(b)
}

func (p *bufferedPage) statusOrOK() int {
	if p.status == 0 {
		return http.StatusOK
	}
	return p.status
}
