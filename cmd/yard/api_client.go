package main

// The client of yard's admin HTTP API (internal/admin) behind `yard queues|exchanges|bindings|
// connections`: flags --http, --user, --password and -o, errors that say what to do next.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultHTTP is where `yard serve` listens for the admin API by default (--http-listen).
const defaultHTTP = "http://127.0.0.1:8080"

// apiTimeout bounds one API call.
const apiTimeout = 30 * time.Second

// apiFlags are the flags every API subcommand takes.
type apiFlags struct {
	base, user, password, output string
}

func (f *apiFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.base, "http", defaultHTTP, "yard's admin API (yard serve --http-listen)")
	pf.StringVar(&f.user, "user", "guest", "user name (an AMQP user)")
	pf.StringVar(&f.password, "password", "guest", "password")
	pf.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
}

// apiError is an error answer of the API, in RabbitMQ's shape.
type apiError struct {
	Status int
	Err    string `json:"error"`
	Reason string `json:"reason"`
}

func (e *apiError) Error() string {
	switch e.Status {
	case http.StatusUnauthorized:
		return "login failed: check --user and --password"
	case http.StatusNotFound:
		return "not found: " + e.Reason
	}
	return fmt.Sprintf("%s: %s", e.Err, e.Reason)
}

// call sends method path (path already escaped) with an optional JSON body and decodes a
// JSON answer into out (if not nil).
func (f *apiFlags) call(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("cannot encode request: %w", err)
		}
		rd = strings.NewReader(string(b))
	}
	base := strings.TrimRight(f.base, "/")
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return fmt.Errorf("cannot reach yard at %s: %w (use --http http://HOST:PORT)", f.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return f.do(req, out)
}

// do sends req with the credentials and decodes a JSON answer into out (if not nil).
func (f *apiFlags) do(req *http.Request, out any) error {
	if f.output != "table" && f.output != "json" {
		return fmt.Errorf("cannot print as %q: use -o table or -o json", f.output)
	}
	req.SetBasicAuth(f.user, f.password)
	cl := &http.Client{Timeout: apiTimeout}
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach yard at %s: is `yard serve` running? use --http to name its --http-listen address (%w)", f.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("cannot read yard's answer: %w", err)
	}
	if resp.StatusCode >= 400 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Err == "" {
			e.Err, e.Reason = resp.Status, strings.TrimSpace(string(data))
		}
		return e
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("cannot decode yard's answer from %s: %w (is --http yard's admin port?)", f.base, err)
		}
	}
	return nil
}

// printJSON prints v indented (for -o json).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// vhostPath escapes a vhost for a URL as RabbitMQ's API wants it ("/" is %2F).
func vhostPath(v string) string { return url.PathEscape(v) }
