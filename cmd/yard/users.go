package main

// `yard users|permissions|vhosts`: the user store, on a stopped server's data directory
// (--data-dir: takes the directory's lock) or on a running server through its admin API
// (--http URL with an administrator's --user and --admin-password, or credentials in the
// URL). Passwords can come from a flag, from stdin (--password-stdin) or from the
// environment (YARD_PASSWORD for the user's, YARD_ADMIN_PASSWORD for the administrator's) so
// that they need not appear in `ps`.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/broker"
)

// storeTarget is where a user-store command acts, from the group's persistent flags.
type storeTarget struct {
	dataDir, httpURL, user, adminPass string
}

func (t *storeTarget) flags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&t.dataDir, "data-dir", "yard-data", "data directory of a stopped server")
	f.StringVar(&t.httpURL, "http", "", "admin API of a running server (http://HOST:PORT); then --user and --admin-password are an administrator's")
	f.StringVar(&t.user, "user", "", "administrator user for --http")
	f.StringVar(&t.adminPass, "admin-password", "", "administrator password for --http (or YARD_ADMIN_PASSWORD)")
}

// storeOps is what the commands do, offline (the store) or online (the admin API).
type storeOps interface {
	addUser(name, password string, tags []string) error
	deleteUser(name string) error
	setPassword(name, password string) error
	users() ([]auth.User, error)
	setPermission(user, vhost string, p auth.Permission) error
	clearPermission(user, vhost string) error
	permissions() ([]auth.UserPermission, error)
	addVhost(name string) error
	deleteVhost(name string) error
	vhosts() ([]auth.Vhost, error)
	setUserLimit(user, name string, v int64) error
	setVhostLimit(vhost, name string, v int64) error
}

// run opens the target, runs f and releases the target.
func (t *storeTarget) run(f func(storeOps) error) error {
	if t.httpURL != "" {
		return f(t.remote())
	}
	users, release, err := broker.OpenUsers(t.dataDir)
	var inUse *broker.DataDirInUseError
	if errors.As(err, &inUse) {
		return fmt.Errorf("data dir %s is in use by a running yard (pid %s): change users on a running server through its admin API with --http http://HOST:PORT --user ADMIN --admin-password ...", inUse.Dir, inUse.PID)
	}
	if err != nil {
		return err
	}
	return errors.Join(f(localOps{users}), release())
}

type localOps struct{ s *auth.Store }

func (l localOps) addUser(name, pw string, tags []string) error {
	if _, ok := l.s.User(name); ok {
		return fmt.Errorf("cannot add user %q: it already exists", name)
	}
	_, err := l.s.PutUser(name, &pw, tags)
	return err
}
func (l localOps) deleteUser(name string) error                { return l.s.DeleteUser(name) }
func (l localOps) setPassword(name, pw string) error           { return l.s.SetPassword(name, pw) }
func (l localOps) users() ([]auth.User, error)                 { return l.s.Users(), nil }
func (l localOps) permissions() ([]auth.UserPermission, error) { return l.s.Permissions(), nil }
func (l localOps) setPermission(u, v string, p auth.Permission) error {
	return l.s.SetPermission(u, v, p)
}
func (l localOps) clearPermission(u, v string) error { return l.s.ClearPermission(u, v) }
func (l localOps) addVhost(name string) error        { return l.s.AddVhost(name, "") }
func (l localOps) deleteVhost(name string) error     { return l.s.DeleteVhost(name) }
func (l localOps) vhosts() ([]auth.Vhost, error)     { return l.s.Vhosts(), nil }
func (l localOps) setUserLimit(u, n string, v int64) error {
	return l.s.SetUserLimit(u, n, v)
}
func (l localOps) setVhostLimit(vh, n string, v int64) error {
	return l.s.SetVhostLimit(vh, n, v)
}

// remoteOps calls the admin API.
type remoteOps struct {
	base       *url.URL
	user, pass string
	cl         *http.Client
}

func (t *storeTarget) remote() remoteOps {
	u, err := url.Parse(strings.TrimRight(t.httpURL, "/"))
	r := remoteOps{base: u, user: t.user, pass: t.adminPass, cl: &http.Client{Timeout: 30 * time.Second}}
	if err != nil || u.Scheme == "" || u.Host == "" {
		r.base = nil
		return r
	}
	if r.pass == "" {
		r.pass = os.Getenv("YARD_ADMIN_PASSWORD")
	}
	if u.User != nil {
		if r.user == "" {
			r.user = u.User.Username()
		}
		if p, ok := u.User.Password(); ok && r.pass == "" {
			r.pass = p
		}
		u.User = nil
	}
	return r
}

// do sends a request; a non-2xx answer becomes an error with the API's reason.
func (r remoteOps) do(method string, path []string, body, out any) (int, error) {
	if r.base == nil {
		return 0, errors.New("cannot use --http: give a URL such as http://127.0.0.1:8080")
	}
	esc := make([]string, len(path))
	for i, p := range path {
		esc[i] = url.PathEscape(p)
	}
	target := r.base.String() + "/api/" + strings.Join(esc, "/")
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		return 0, fmt.Errorf("cannot call the admin API: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := r.cl.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot call the admin API: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Reason string }
		_ = json.Unmarshal(data, &e)
		if resp.StatusCode == http.StatusUnauthorized {
			return resp.StatusCode, fmt.Errorf("admin API refused %s %s: %s (give an administrator's --user and --admin-password)", method, req.URL.Path, e.Reason)
		}
		return resp.StatusCode, fmt.Errorf("admin API: %s %s: %d %s: %s", method, req.URL.Path, resp.StatusCode, e.Error, e.Reason)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("cannot decode the admin API's answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

type apiUser struct {
	Name   string           `json:"name"`
	Tags   []string         `json:"tags"`
	Limits map[string]int64 `json:"limits"`
}

func (r remoteOps) getUser(name string) (*apiUser, error) {
	var u apiUser
	code, err := r.do("GET", []string{"users", name}, nil, &u)
	if code == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func (r remoteOps) addUser(name, pw string, tags []string) error {
	u, err := r.getUser(name)
	if err != nil {
		return err
	}
	if u != nil {
		return fmt.Errorf("cannot add user %q: it already exists", name)
	}
	_, err = r.do("PUT", []string{"users", name}, map[string]any{"password": pw, "tags": strings.Join(tags, ",")}, nil)
	return err
}
func (r remoteOps) deleteUser(name string) error {
	_, err := r.do("DELETE", []string{"users", name}, nil, nil)
	return err
}
func (r remoteOps) setPassword(name, pw string) error {
	u, err := r.getUser(name)
	if err != nil {
		return err
	}
	if u == nil {
		return fmt.Errorf("cannot change the password of user %q: no such user", name)
	}
	_, err = r.do("PUT", []string{"users", name}, map[string]any{"password": pw, "tags": strings.Join(u.Tags, ",")}, nil)
	return err
}
func (r remoteOps) users() ([]auth.User, error) {
	var list []apiUser
	if _, err := r.do("GET", []string{"users"}, nil, &list); err != nil {
		return nil, err
	}
	out := make([]auth.User, 0, len(list))
	for _, u := range list {
		out = append(out, auth.User{Name: u.Name, Tags: u.Tags, Limits: u.Limits})
	}
	return out, nil
}
func (r remoteOps) setPermission(u, v string, p auth.Permission) error {
	_, err := r.do("PUT", []string{"permissions", v, u}, p, nil)
	return err
}
func (r remoteOps) clearPermission(u, v string) error {
	_, err := r.do("DELETE", []string{"permissions", v, u}, nil, nil)
	return err
}
func (r remoteOps) permissions() ([]auth.UserPermission, error) {
	var list []struct {
		User, Vhost, Configure, Write, Read string
	}
	if _, err := r.do("GET", []string{"permissions"}, nil, &list); err != nil {
		return nil, err
	}
	var out []auth.UserPermission
	for _, p := range list {
		out = append(out, auth.UserPermission{User: p.User, Vhost: p.Vhost, Permission: auth.Permission{Configure: p.Configure, Write: p.Write, Read: p.Read}})
	}
	return out, nil
}
func (r remoteOps) addVhost(name string) error {
	code, err := r.do("PUT", []string{"vhosts", name}, map[string]string{}, nil)
	if err == nil && code == http.StatusNoContent {
		return fmt.Errorf("cannot add vhost %q: it already exists", name)
	}
	return err
}
func (r remoteOps) deleteVhost(name string) error {
	_, err := r.do("DELETE", []string{"vhosts", name}, nil, nil)
	return err
}
func (r remoteOps) vhosts() ([]auth.Vhost, error) {
	var list []auth.Vhost
	if _, err := r.do("GET", []string{"vhosts"}, nil, &list); err != nil {
		return nil, err
	}
	var lim []struct {
		Vhost string           `json:"vhost"`
		Value map[string]int64 `json:"value"`
	}
	if _, err := r.do("GET", []string{"vhost-limits"}, nil, &lim); err == nil {
		for _, l := range lim {
			for i := range list {
				if list[i].Name == l.Vhost {
					list[i].Limits = l.Value
				}
			}
		}
	}
	return list, nil
}
func (r remoteOps) setUserLimit(u, n string, v int64) error {
	if v < 0 {
		_, err := r.do("DELETE", []string{"user-limits", u, n}, nil, nil)
		return err
	}
	_, err := r.do("PUT", []string{"user-limits", u, n}, map[string]int64{"value": v}, nil)
	return err
}
func (r remoteOps) setVhostLimit(vh, n string, v int64) error {
	if v < 0 {
		_, err := r.do("DELETE", []string{"vhost-limits", vh, n}, nil, nil)
		return err
	}
	_, err := r.do("PUT", []string{"vhost-limits", vh, n}, map[string]int64{"value": v}, nil)
	return err
}

// passwordSource reads a new password from --password, --password-stdin or YARD_PASSWORD.
type passwordSource struct {
	flag  string
	stdin bool
}

func (p *passwordSource) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.flag, "password", "", "the user's password (visible in ps: prefer --password-stdin or YARD_PASSWORD)")
	cmd.Flags().BoolVar(&p.stdin, "password-stdin", false, "read the user's password from the first line of stdin")
}

func (p *passwordSource) get(cmd *cobra.Command) (string, error) {
	switch {
	case p.stdin:
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("cannot read the password from stdin: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("cannot read the password from stdin: it is empty")
		}
		return line, nil
	case p.flag != "":
		return p.flag, nil
	case os.Getenv("YARD_PASSWORD") != "":
		return os.Getenv("YARD_PASSWORD"), nil
	}
	return "", errors.New("no password: give --password, --password-stdin or YARD_PASSWORD")
}

func newUsersCmd() *cobra.Command {
	var t storeTarget
	cmd := &cobra.Command{Use: "users", Short: "add, delete and list users (every protocol's), change passwords and limits"}
	t.flags(cmd)
	var pw passwordSource
	var tags []string
	add := &cobra.Command{Use: "add NAME", Short: "add a user", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		p, err := pw.get(cmd)
		if err != nil {
			return err
		}
		return t.run(func(o storeOps) error { return o.addUser(args[0], p, tags) })
	}}
	pw.add(add)
	add.Flags().StringSliceVar(&tags, "tags", nil, "tags: administrator, monitoring, management (comma-separated)")
	var pw2 passwordSource
	passwd := &cobra.Command{Use: "passwd NAME", Short: "change a user's password", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		p, err := pw2.get(cmd)
		if err != nil {
			return err
		}
		return t.run(func(o storeOps) error { return o.setPassword(args[0], p) })
	}}
	pw2.add(passwd)
	del := &cobra.Command{Use: "delete NAME", Short: "delete a user and its permissions", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		return t.run(func(o storeOps) error { return o.deleteUser(args[0]) })
	}}
	list := &cobra.Command{Use: "list", Short: "list users and their tags", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		return t.run(func(o storeOps) error {
			us, err := o.users()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "USER\tTAGS\tLIMITS")
			for _, u := range us {
				fmt.Fprintf(w, "%s\t%s\t%s\n", u.Name, strings.Join(u.Tags, ","), formatLimits(u.Limits))
			}
			return w.Flush()
		})
	}}
	var maxConns, maxChans int64
	limits := &cobra.Command{Use: "limits NAME", Short: "set a user's max-connections and max-channels (-1 removes a limit)", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		return t.run(func(o storeOps) error {
			if cmd.Flags().Changed("max-connections") {
				if err := o.setUserLimit(args[0], auth.LimitMaxConnections, maxConns); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("max-channels") {
				return o.setUserLimit(args[0], auth.LimitMaxChannels, maxChans)
			}
			return nil
		})
	}}
	limits.Flags().Int64Var(&maxConns, "max-connections", -1, "AMQP connections the user may have open (-1: no limit)")
	limits.Flags().Int64Var(&maxChans, "max-channels", -1, "AMQP channels the user may have open across its connections (-1: no limit)")
	cmd.AddCommand(add, passwd, del, list, limits)
	return cmd
}

func formatLimits(l auth.Limits) string {
	var ks []string
	for k, v := range l {
		ks = append(ks, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func newPermissionsCmd() *cobra.Command {
	var t storeTarget
	cmd := &cobra.Command{Use: "permissions", Short: "set and list AMQP permissions (configure, write, read regular expressions per user and vhost)"}
	t.flags(cmd)
	var vh string
	var p auth.Permission
	set := &cobra.Command{Use: "set NAME", Short: "set a user's permissions in a vhost", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		return t.run(func(o storeOps) error { return o.setPermission(args[0], vh, p) })
	}}
	set.Flags().StringVar(&vh, "vhost", "/", "virtual host")
	set.Flags().StringVar(&p.Configure, "configure", "", "regular expression of the resources the user may declare and delete (\"\" none, \".*\" all)")
	set.Flags().StringVar(&p.Write, "write", "", "regular expression of the resources the user may publish to / bind to")
	set.Flags().StringVar(&p.Read, "read", "", "regular expression of the resources the user may consume from / bind from")
	var cvh string
	clear := &cobra.Command{Use: "clear NAME", Short: "remove a user's permissions in a vhost", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		return t.run(func(o storeOps) error { return o.clearPermission(args[0], cvh) })
	}}
	clear.Flags().StringVar(&cvh, "vhost", "/", "virtual host")
	list := &cobra.Command{Use: "list", Short: "list permissions", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		return t.run(func(o storeOps) error {
			ps, err := o.permissions()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VHOST\tUSER\tCONFIGURE\tWRITE\tREAD")
			for _, p := range ps {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.Vhost, p.User, p.Configure, p.Write, p.Read)
			}
			return w.Flush()
		})
	}}
	cmd.AddCommand(set, clear, list)
	return cmd
}

func newVhostsCmd() *cobra.Command {
	var t storeTarget
	cmd := &cobra.Command{Use: "vhosts", Short: "add, delete and list AMQP virtual hosts"}
	t.flags(cmd)
	add := &cobra.Command{Use: "add NAME", Short: "add a virtual host", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		return t.run(func(o storeOps) error { return o.addVhost(args[0]) })
	}}
	del := &cobra.Command{Use: "delete NAME", Short: "delete a virtual host with its exchanges, queues and messages", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		return t.run(func(o storeOps) error { return o.deleteVhost(args[0]) })
	}}
	list := &cobra.Command{Use: "list", Short: "list virtual hosts", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		return t.run(func(o storeOps) error {
			vs, err := o.vhosts()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VHOST\tLIMITS")
			for _, v := range vs {
				fmt.Fprintf(w, "%s\t%s\n", v.Name, formatLimits(v.Limits))
			}
			return w.Flush()
		})
	}}
	var maxConns, maxQueues int64
	limits := &cobra.Command{Use: "limits NAME", Short: "set a vhost's max-connections and max-queues (-1 removes a limit)", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		return t.run(func(o storeOps) error {
			if cmd.Flags().Changed("max-connections") {
				if err := o.setVhostLimit(args[0], auth.LimitMaxConnections, maxConns); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("max-queues") {
				return o.setVhostLimit(args[0], auth.LimitMaxQueues, maxQueues)
			}
			return nil
		})
	}}
	limits.Flags().Int64Var(&maxConns, "max-connections", -1, "AMQP connections the vhost may have open (-1: no limit)")
	limits.Flags().Int64Var(&maxQueues, "max-queues", -1, "queues the vhost may hold (-1: no limit)")
	cmd.AddCommand(add, del, list, limits)
	return cmd
}
