package auth

// The store: users (tags, SCRAM credentials), vhosts, AMQP permissions and limits, kept in
// memory under one lock and written whole, atomically, to users.json after every change:
//
//	{"format": 1, "crc32c": <uint32>, "state": <state>}
//
// crc32c (Castagnoli) covers the compact JSON of state, as catalog.json's.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/yardmq/yard/internal/atomicfile"
)

// Errors callers tell apart.
var (
	ErrNotFound   = errors.New("not found")
	ErrExists     = errors.New("already exists")
	ErrInvalid    = errors.New("invalid")
	ErrCorrupt    = errors.New("users file is corrupt")
	ErrBadLogin   = errors.New("unknown user or wrong password")
	errReadOnly   = errors.New("store is read-only")
	castagnoli    = crc32.MakeTable(crc32.Castagnoli)
	formatVersion = 1
)

// Tags RabbitMQ gives users; others are kept as given.
const (
	TagAdministrator = "administrator"
	TagMonitoring    = "monitoring"
	TagManagement    = "management"
)

// Permission is a user's AMQP permissions in one vhost: regular expressions over resource
// names, as RabbitMQ's (the empty string matches nothing, as RabbitMQ's "^$").
type Permission struct {
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// FullPermission is ".*" for all three.
var FullPermission = Permission{Configure: ".*", Write: ".*", Read: ".*"}

// Limits are RabbitMQ's user limits (MaxConnections, MaxChannels) and vhost limits
// (MaxConnections, MaxQueues); a negative value or absence means no limit, 0 refuses all.
type Limits map[string]int64

// Limit names.
const (
	LimitMaxConnections = "max-connections"
	LimitMaxChannels    = "max-channels"
	LimitMaxQueues      = "max-queues"
)

// User is a user as the store holds it (no password).
type User struct {
	Name        string                   `json:"name"`
	Tags        []string                 `json:"tags"`
	Credentials map[Mechanism]Credential `json:"credentials"`
	Limits      Limits                   `json:"limits,omitempty"`
}

// HasTag reports whether u carries tag.
func (u User) HasTag(tag string) bool { return slices.Contains(u.Tags, tag) }

// Vhost is a virtual host as the store holds it.
type Vhost struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Limits      Limits `json:"limits,omitempty"`
}

// UserPermission is one entry of the permission table.
type UserPermission struct {
	User  string `json:"user"`
	Vhost string `json:"vhost"`
	Permission
}

type state struct {
	// Revision counts the changes replicated through a cluster's metadata group (replicate.go);
	// 0 on a single node and on a cluster node before its first replicated change.
	Revision    uint64                           `json:"revision,omitempty"`
	Users       map[string]*User                 `json:"users"`
	Vhosts      map[string]*Vhost                `json:"vhosts"`
	Permissions map[string]map[string]Permission `json:"permissions"` // vhost -> user -> perms
}

// Options configure Open.
type Options struct {
	// Path is users.json; "" keeps the store in memory only.
	Path string
	// DefaultUser and DefaultPass are created (administrator, full permissions on "/")
	// when the file does not exist yet; "" means guest/guest.
	DefaultUser, DefaultPass string
	// DefaultVhost is created when the file does not exist yet; "" means "/".
	DefaultVhost string
	// Iterations for new credentials; 0: DefaultIterations.
	Iterations int
	Logger     *slog.Logger
}

// Store is the user store. Its methods are safe for concurrent use.
type Store struct {
	path       string
	iterations int
	log        *slog.Logger
	failures   *failures

	mu       sync.RWMutex
	st       state
	re       map[string]*regexp.Regexp // compiled permission patterns
	fakeKey  []byte
	watchers []func(Event)
	repl     Replicator // set once before serving on a cluster node (replicate.go)

	evMu         sync.Mutex // guards evQueue and evDelivering (replicate.go)
	evQueue      []Event
	evDelivering bool
}

// Event tells a watcher what changed (the AMQP domain follows vhost additions/deletions;
// front ends close connections of deleted users).
type Event struct {
	Kind string // "vhost-added", "vhost-deleted", "user-deleted", "user-changed"
	Name string
}

// Open reads the store at opts.Path, creating it with the default user and vhost if it
// does not exist.
func Open(opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Iterations <= 0 {
		opts.Iterations = DefaultIterations
	}
	s := &Store{path: opts.Path, iterations: opts.Iterations, log: opts.Logger, failures: newFailures(),
		re: map[string]*regexp.Regexp{}}
	if opts.Path != "" {
		data, err := os.ReadFile(opts.Path)
		switch {
		case err == nil:
			st, err := decode(data)
			if err != nil {
				return nil, fmt.Errorf("cannot read %s: %w", opts.Path, err)
			}
			s.st = st
			return s, nil
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("cannot read users: %w", err)
		}
	}
	s.st = state{Users: map[string]*User{}, Vhosts: map[string]*Vhost{}, Permissions: map[string]map[string]Permission{}}
	user, pass, vh := opts.DefaultUser, opts.DefaultPass, opts.DefaultVhost
	if user == "" {
		user, pass = "guest", "guest"
	}
	if vh == "" {
		vh = "/"
	}
	s.st.Vhosts[vh] = &Vhost{Name: vh}
	s.st.Users[user] = &User{Name: user, Tags: []string{TagAdministrator}, Credentials: s.credentials(pass)}
	s.st.Permissions[vh] = map[string]Permission{user: FullPermission}
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	s.log.Info("created the default user", "user", user, "vhost", vh)
	return s, nil
}

func (s *Store) credentials(password string) map[Mechanism]Credential {
	m := map[Mechanism]Credential{}
	for _, mech := range Mechanisms {
		m[mech] = NewCredential(mech, password, s.iterations)
	}
	return m
}

// Watch calls f after every change (outside the lock, in the changing goroutine).
func (s *Store) Watch(f func(Event)) {
	s.mu.Lock()
	s.watchers = append(s.watchers, f)
	s.mu.Unlock()
}

func (s *Store) notify(e Event) {
	s.mu.RLock()
	ws := slices.Clone(s.watchers)
	s.mu.RUnlock()
	for _, w := range ws {
		w(e)
	}
}

func encode(st *state) ([]byte, error) {
	raw, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("cannot encode users: %w", err)
	}
	out, err := json.MarshalIndent(struct {
		Format int             `json:"format"`
		CRC32C uint32          `json:"crc32c"`
		State  json.RawMessage `json:"state"`
	}{formatVersion, crc32.Checksum(raw, castagnoli), raw}, "", " ")
	if err != nil {
		return nil, fmt.Errorf("cannot encode users: %w", err)
	}
	return append(out, '\n'), nil
}

// normalize gives a decoded state's absent maps their empty value.
func (st *state) normalize() {
	if st.Users == nil {
		st.Users = map[string]*User{}
	}
	if st.Vhosts == nil {
		st.Vhosts = map[string]*Vhost{}
	}
	if st.Permissions == nil {
		st.Permissions = map[string]map[string]Permission{}
	}
}

func decode(data []byte) (state, error) {
	var env struct {
		Format int             `json:"format"`
		CRC32C uint32          `json:"crc32c"`
		State  json.RawMessage `json:"state"`
	}
	var st state
	if err := json.Unmarshal(data, &env); err != nil {
		return st, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if env.Format < 1 || env.Format > formatVersion {
		return st, fmt.Errorf("%w: format %d not supported (this binary reads up to %d)", ErrCorrupt, env.Format, formatVersion)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, env.State); err != nil {
		return st, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if got := crc32.Checksum(compact.Bytes(), castagnoli); got != env.CRC32C {
		return st, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, env.CRC32C)
	}
	if err := json.Unmarshal(compact.Bytes(), &st); err != nil {
		return st, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	st.normalize()
	return st, nil
}

func (s *Store) saveLocked() error {
	if s.path == "" {
		return nil
	}
	data, err := encode(&s.st)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path, data, 0o600); err != nil {
		return fmt.Errorf("cannot save users: %w", err)
	}
	return nil
}

// update runs f under the lock on a copy-free state and saves; on a save failure the
// in-memory state is restored from the last saved file contents (f's change undone). On a
// cluster node f runs on a copy that is replicated instead (replicate.go), and the watchers
// learn what changed from the state applied, on every node (ev is not used there).
func (s *Store) update(f func(st *state) error, ev Event) error {
	if r := s.replicator(); r != nil {
		return s.updateReplicated(r, f)
	}
	s.mu.Lock()
	before, err := encode(&s.st)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if err := f(&s.st); err != nil {
		s.mu.Unlock()
		return err
	}
	if err := s.saveLocked(); err != nil {
		if st, derr := decode(before); derr == nil {
			s.st = st
		}
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	if ev.Kind != "" {
		s.notify(ev)
	}
	return nil
}

// ValidName checks a user or vhost name: not empty, at most 255 bytes, no control
// characters.
func ValidName(what, name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("%w: %s name must be 1 to 255 bytes", ErrInvalid, what)
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: %s name contains control characters", ErrInvalid, what)
	}
	return nil
}

func cleanTags(tags []string) []string {
	out := []string{}
	for _, t := range tags {
		for _, p := range strings.Split(t, ",") {
			if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// PutUser creates the user or replaces its tags (and its password unless password is nil).
// A new user needs a password ("" is allowed: RabbitMQ's passwordless user cannot log in
// with a password; yard refuses the empty password at login).
func (s *Store) PutUser(name string, password *string, tags []string) (created bool, err error) {
	if err := ValidName("user", name); err != nil {
		return false, err
	}
	var creds map[Mechanism]Credential
	if password != nil {
		creds = s.credentials(*password) // outside the lock: PBKDF2 is slow on purpose
	}
	err = s.update(func(st *state) error {
		created = false // f runs again if a concurrent change on another node came first
		u, ok := st.Users[name]
		if !ok {
			if creds == nil {
				return fmt.Errorf("%w: a new user needs a password", ErrInvalid)
			}
			u = &User{Name: name}
			st.Users[name] = u
			created = true
		}
		u.Tags = cleanTags(tags)
		if creds != nil {
			u.Credentials = creds
		}
		return nil
	}, Event{Kind: "user-changed", Name: name})
	return created, err
}

// SetPassword replaces a user's credentials for every mechanism.
func (s *Store) SetPassword(name, password string) error {
	creds := s.credentials(password)
	return s.update(func(st *state) error {
		u, ok := st.Users[name]
		if !ok {
			return fmt.Errorf("user %q: %w", name, ErrNotFound)
		}
		u.Credentials = creds
		return nil
	}, Event{Kind: "user-changed", Name: name})
}

// SetCredential sets one mechanism's credential, creating the user (no tags) if needed:
// Kafka's AlterUserScramCredentials upsertion.
func (s *Store) SetCredential(name string, m Mechanism, c Credential) error {
	if err := ValidName("user", name); err != nil {
		return err
	}
	return s.update(func(st *state) error {
		u, ok := st.Users[name]
		if !ok {
			u = &User{Name: name, Tags: []string{}}
			st.Users[name] = u
		}
		if u.Credentials == nil {
			u.Credentials = map[Mechanism]Credential{}
		}
		u.Credentials[m] = c
		return nil
	}, Event{Kind: "user-changed", Name: name})
}

// DeleteCredential removes one mechanism's credential (the user stays).
func (s *Store) DeleteCredential(name string, m Mechanism) error {
	return s.update(func(st *state) error {
		u, ok := st.Users[name]
		if !ok {
			return fmt.Errorf("user %q: %w", name, ErrNotFound)
		}
		if _, ok := u.Credentials[m]; !ok {
			return fmt.Errorf("user %q has no %s credential: %w", name, m, ErrNotFound)
		}
		delete(u.Credentials, m)
		return nil
	}, Event{Kind: "user-changed", Name: name})
}

// DeleteUser removes a user and its permissions.
func (s *Store) DeleteUser(name string) error {
	return s.update(func(st *state) error {
		if _, ok := st.Users[name]; !ok {
			return fmt.Errorf("user %q: %w", name, ErrNotFound)
		}
		delete(st.Users, name)
		for _, ps := range st.Permissions {
			delete(ps, name)
		}
		return nil
	}, Event{Kind: "user-deleted", Name: name})
}

func cloneUser(u *User) User {
	c := *u
	c.Tags = slices.Clone(u.Tags)
	c.Credentials = map[Mechanism]Credential{}
	for m, cr := range u.Credentials {
		c.Credentials[m] = cr
	}
	c.Limits = Limits{}
	for k, v := range u.Limits {
		c.Limits[k] = v
	}
	return c
}

// User returns a copy of the named user.
func (s *Store) User(name string) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.st.Users[name]
	if !ok {
		return User{}, false
	}
	return cloneUser(u), true
}

// Users lists the users by name.
func (s *Store) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]User, 0, len(s.st.Users))
	for _, u := range s.st.Users {
		out = append(out, cloneUser(u))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Credential returns a user's credential for a mechanism.
func (s *Store) Credential(name string, m Mechanism) (Credential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.st.Users[name]
	if !ok {
		return Credential{}, false
	}
	c, ok := u.Credentials[m]
	return c, ok
}

// CheckPassword verifies a PLAIN login: the password against the user's SCRAM-SHA-256
// credential (or SCRAM-SHA-512 if that is the only one).
func (s *Store) CheckPassword(name, password string) (User, error) {
	u, ok := s.User(name)
	if !ok || password == "" {
		return User{}, ErrBadLogin
	}
	for _, m := range Mechanisms {
		if c, ok := u.Credentials[m]; ok {
			if c.Verify(m, password) {
				return u, nil
			}
			return User{}, ErrBadLogin
		}
	}
	return User{}, ErrBadLogin
}

// Authenticate is CheckPassword for the AMQP front end's Authenticator.
func (s *Store) Authenticate(user, secret string) error {
	_, err := s.CheckPassword(user, secret)
	return err
}

// --- vhosts ---

// AddVhost creates a vhost; ErrExists if it does.
func (s *Store) AddVhost(name, description string) error {
	if err := ValidName("vhost", name); err != nil {
		return err
	}
	return s.update(func(st *state) error {
		if _, ok := st.Vhosts[name]; ok {
			return fmt.Errorf("vhost %q: %w", name, ErrExists)
		}
		st.Vhosts[name] = &Vhost{Name: name, Description: description}
		return nil
	}, Event{Kind: "vhost-added", Name: name})
}

// DeleteVhost removes a vhost and every permission in it.
func (s *Store) DeleteVhost(name string) error {
	return s.update(func(st *state) error {
		if _, ok := st.Vhosts[name]; !ok {
			return fmt.Errorf("vhost %q: %w", name, ErrNotFound)
		}
		delete(st.Vhosts, name)
		delete(st.Permissions, name)
		return nil
	}, Event{Kind: "vhost-deleted", Name: name})
}

// HasVhost reports whether the vhost exists.
func (s *Store) HasVhost(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.st.Vhosts[name]
	return ok
}

// Vhosts lists the vhosts by name.
func (s *Store) Vhosts() []Vhost {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Vhost, 0, len(s.st.Vhosts))
	for _, v := range s.st.Vhosts {
		c := *v
		c.Limits = Limits{}
		for k, x := range v.Limits {
			c.Limits[k] = x
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// --- limits ---

func validLimit(name string, user bool) error {
	switch name {
	case LimitMaxConnections:
		return nil
	case LimitMaxChannels:
		if user {
			return nil
		}
	case LimitMaxQueues:
		if !user {
			return nil
		}
	}
	return fmt.Errorf("%w: unknown limit %q", ErrInvalid, name)
}

// SetUserLimit sets (value >= 0) or clears (value < 0) a user limit (max-connections,
// max-channels).
func (s *Store) SetUserLimit(user, name string, value int64) error {
	if err := validLimit(name, true); err != nil {
		return err
	}
	return s.update(func(st *state) error {
		u, ok := st.Users[user]
		if !ok {
			return fmt.Errorf("user %q: %w", user, ErrNotFound)
		}
		u.Limits = setLimit(u.Limits, name, value)
		return nil
	}, Event{Kind: "user-changed", Name: user})
}

// SetVhostLimit sets (value >= 0) or clears (value < 0) a vhost limit (max-connections,
// max-queues).
func (s *Store) SetVhostLimit(vhost, name string, value int64) error {
	if err := validLimit(name, false); err != nil {
		return err
	}
	return s.update(func(st *state) error {
		v, ok := st.Vhosts[vhost]
		if !ok {
			return fmt.Errorf("vhost %q: %w", vhost, ErrNotFound)
		}
		v.Limits = setLimit(v.Limits, name, value)
		return nil
	}, Event{})
}

func setLimit(l Limits, name string, value int64) Limits {
	if value < 0 {
		delete(l, name)
		return l
	}
	if l == nil {
		l = Limits{}
	}
	l[name] = value
	return l
}

// UserLimit returns a user limit; ok false: none.
func (s *Store) UserLimit(user, name string) (int64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if u, ok := s.st.Users[user]; ok {
		v, ok := u.Limits[name]
		return v, ok
	}
	return 0, false
}

// VhostLimit returns a vhost limit; ok false: none.
func (s *Store) VhostLimit(vhost, name string) (int64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if v, ok := s.st.Vhosts[vhost]; ok {
		x, ok := v.Limits[name]
		return x, ok
	}
	return 0, false
}

// AuthenticateExternal accepts a user authenticated by other means (a TLS client
// certificate: AMQP EXTERNAL) if the store knows it, as RabbitMQ's internal backend.
func (s *Store) AuthenticateExternal(user string) error {
	if _, ok := s.User(user); !ok {
		return ErrBadLogin
	}
	return nil
}
