package admin

// The web console: static HTML, CSS and JavaScript embedded in the binary (console/), served
// at /console/ behind the same authentication as the API: the login page's session
// (session.go) or HTTP basic auth; a browser without either is sent to the login page. /
// redirects to the console. The pages poll the JSON API below /api/ every two seconds and
// draw their charts with uPlot (console/vendor/, MIT, vendored: the build needs no network).

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"

	"github.com/yardmq/yard/internal/auth"
)

//go:embed console
var consoleFiles embed.FS

//go:embed login.html
var loginHTML string

var loginTemplate = template.Must(template.New("login").Parse(loginHTML))

func setPageHeaders(w http.ResponseWriter) {
	// The pages are small and change with the binary: always revalidate.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	// Only the console's own files run; uPlot sets element styles from script.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
}

// loginPage answers the login form, with an error line when msg is not empty.
func (s *Server) loginPage(w http.ResponseWriter, code int, msg string) {
	var b bytes.Buffer
	if err := loginTemplate.Execute(&b, struct{ Error string }{msg}); err != nil {
		panic("BUG: the login template failed: " + err.Error())
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

func (s *Server) routeConsole() {
	sub, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic("BUG: the embedded console has no console/ directory: " + err.Error())
	}
	files := http.StripPrefix("/console/", http.FileServerFS(sub))
	s.routeSession()
	pages := s.authed(anyTag, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		setPageHeaders(w)
		files.ServeHTTP(w, r)
	})
	s.mux.HandleFunc("GET /console/", func(w http.ResponseWriter, r *http.Request) {
		_, _, basic := r.BasicAuth()
		isPage := r.URL.Path == "/console/" || r.URL.Path == "/console/index.html"
		if _, sess, _, _ := s.fromSession(r); isPage && !basic && sess == nil {
			http.Redirect(w, r, "/console/login", http.StatusSeeOther)
			return
		}
		pages.ServeHTTP(w, r)
	})
	// The login page's style sheet is public (nothing secret in it).
	s.mux.HandleFunc("GET /console/style.css", func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		files.ServeHTTP(w, r)
	})
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusFound)
	})
}
