package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

//go:embed static
var static embed.FS

// Processor gives goka's monitor the running goka processor: a
// processor.Processor.
type Processor interface {
	GokaProcessor() *goka.Processor
}

// View gives goka's monitor the running goka view and its query page the
// table entries: a views.View.
type View interface {
	GokaView() *goka.View
	Entry(id string) (*processor.Customer, error)
}

// Config says what the page's own handlers read.
type Config struct {
	// DeadLetters reads the dead-letter topic; nil leaves the dead
	// letters (and their replay) out.
	DeadLetters DeadLetterReader
	// Topics names the events topic and the table.
	Topics kafka.Topics
	// Processor and View are shown on goka's pages; nil leaves them out.
	Processor Processor
	View      View
	// Replayer produces replayed dead letters to the events topic (a
	// kafka.Publisher); nil leaves replay out.
	Replayer Replayer
	// Registerer receives the replay counter; nil leaves it out.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Pages returns the handlers of the web page, to mount with web.Deps:
//
//	/                      the page
//	/ui/                   its scripts, styles and icon
//	/ui/api/dead-letters   the latest dead-letter records, as JSON
//	/ui/api/dead-letters/replay  POST: produce a dead letter again
//	/goka/                 goka's monitor and query pages
//	/goka/assets/          the scripts and styles of goka's pages
//
// The server checks tokens as for its own routes: the handlers that show
// records (dead letters with their raw values, goka's pages with the
// table's entries) are reads, while the page and the static files stay
// open, like /readyz, since they hold no data.
func Pages(cfg Config) ([]web.Page, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	assets := newAssets(static, "static", "/ui/")
	pages := []web.Page{
		{Pattern: "/{$}", Handler: assets.page("index.html"), Access: web.Open},
		{Pattern: "/ui/", Handler: http.StripPrefix("/ui/", assets), Access: web.Open},
		{Pattern: "/goka/", Handler: newGokaPages(cfg), Access: web.Read},
		{Pattern: gokaAssetsBase, Handler: http.StripPrefix(gokaAssetsBase, newAssets(gokaAssetFiles, "gokaassets", gokaAssetsBase)), Access: web.Open},
	}
	if cfg.DeadLetters == nil {
		return pages, nil
	}
	dl := newDeadLetters(cfg.DeadLetters, cfg.Topics.Events, cfg.Logger)
	pages = append(pages, web.Page{Pattern: "/ui/api/dead-letters", Handler: dl, Access: web.Read})
	if cfg.Replayer != nil {
		r, err := newReplays(dl, cfg.Replayer, cfg.Topics.Events, cfg.Registerer)
		if err != nil {
			return nil, err
		}
		pages = append(pages, web.Page{Pattern: "/ui/api/dead-letters/replay", Handler: r, Access: web.Write, Method: http.MethodPost})
	}
	return pages, nil
}

// contentSecurityPolicy keeps the page to what the binary serves: no
// script, style, font or connection may come from anywhere else, and no
// inline script may run.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// assets serves the embedded files, each with a content hash as ETag so
// that browsers revalidate cheaply and never run a stale script.
type assets struct {
	files  map[string]asset
	prefix string // the path they are served below, for messages
}

type asset struct {
	body        []byte
	etag        string
	contentType string
}

// contentTypes are the types of the page's files, fixed here rather than
// read from the machine's MIME tables, which differ: a module script must
// be served as JavaScript.
var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".woff":  "font/woff",
	".woff2": "font/woff2",
}

func newAssets(files fs.FS, root, prefix string) *assets {
	a := &assets{files: map[string]asset{}, prefix: prefix}
	_ = fs.WalkDir(files, root, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		name = strings.TrimPrefix(name, root+"/")
		sum := sha256.Sum256(body)
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			ct = "application/octet-stream"
		}
		a.files[name] = asset{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: ct}
		return nil
	}) // an embed.FS cannot fail to walk or read
	return a
}

// ServeHTTP serves a file by its path below /ui/. The page itself is
// served at / only, since its relative links resolve from there.
func (a *assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Path
	if name == "index.html" {
		writeError(w, http.StatusNotFound, "not_found", "the page is served at /")
		return
	}
	a.serve(w, r, name)
}

// page serves one file whatever the path.
func (a *assets) page(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.serve(w, r, name) })
}

func (a *assets) serve(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := a.files[name]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such file: "+a.prefix+name)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if strings.HasSuffix(name, ".html") {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}

// writeError and writeJSON answer as the API does, through web's writer:
// the page's handlers are mounted on web's server and share its shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	web.WriteError(w, status, code, message)
}

func writeJSON(w http.ResponseWriter, status int, body any) { web.WriteJSON(w, status, body) }
