// Package web owns the operator UI: a small single-page application (plain HTML, JavaScript and CSS, no
// build step, nothing fetched from elsewhere) embedded in the binary. It searches recordings, plays one back
// with per-channel waveforms and a timeline of the call, explains why a call was not matched or recorded, and
// lists the live media sessions. It talks only to the /api/v1 routes served by package api; this package
// serves the static files and nothing else.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

//go:embed static
var static embed.FS

// Headers sent with every answer of Handler, files and 404s alike.
const (
	contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'"
	cacheControl          = "no-cache" // files are small: revalidate every time, the ETag makes that cheap
)

// asset is one embedded file, read once.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// assets maps a URL path ("/", "/app.js") to its file.
var assets = mustLoad(static)

// contentTypes fixes the types of the files we ship, independent of the host's mime.types.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

func mustLoad(fsys fs.FS) map[string]*asset {
	m, err := load(fsys)
	if err != nil {
		panic("web: " + err.Error())
	}
	return m
}

// load reads every file under static/ into memory with its content type and a strong ETag.
func load(fsys fs.FS) (map[string]*asset, error) {
	sub, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	m := make(map[string]*asset)
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		ext := path.Ext(name)
		ctype := contentTypes[ext]
		if ctype == "" {
			ctype = mime.TypeByExtension(ext)
		}
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		m["/"+name] = &asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	index := m["/index.html"]
	if index == nil {
		return nil, fmt.Errorf("static/index.html missing")
	}
	m["/"] = index
	return m, nil
}

// Handler serves the UI's files: index.html at "/", the others at their names. Any other path is 404, so it
// can be mounted as "GET /" beside more specific routes (/api/v1/, /metrics, …) without shadowing typos.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a := assets[r.URL.Path]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", a.etag)
	// ServeContent answers If-None-Match (304), Range and HEAD; a zero modtime leaves Last-Modified out.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
