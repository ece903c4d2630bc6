package admin

// The web console: static HTML, CSS and JavaScript embedded in the binary (console/), served
// at /console/ behind the same authentication as the API (the browser's basic-auth prompt),
// with / redirecting to it. The pages poll the JSON API below /api/ every two seconds and
// draw their charts with uPlot (console/vendor/, MIT, vendored: the build needs no network).

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/yardmq/yard/internal/auth"
)

//go:embed console
var consoleFiles embed.FS

func (s *Server) routeConsole() {
	sub, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic("BUG: the embedded console has no console/ directory: " + err.Error())
	}
	files := http.StripPrefix("/console/", http.FileServerFS(sub))
	s.mux.Handle("GET /console/", s.authed(anyTag, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		// The pages are small and change with the binary: always revalidate.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		// Only the console's own files run; uPlot sets element styles from script.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
		files.ServeHTTP(w, r)
	}))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusFound)
	})
}
