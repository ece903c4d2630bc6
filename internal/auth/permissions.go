package auth

// AMQP permissions as RabbitMQ's: per user and vhost three regular expressions (configure,
// write, read) matched against a resource's name; the empty pattern matches nothing. The
// default exchange ("") is checked as "amq.default". A user without an entry for a vhost
// may not open it.

import (
	"fmt"
	"regexp"
	"sort"
)

// Access is the kind of access a method needs on a resource.
type Access int

// The three kinds of access.
const (
	Configure Access = iota
	Write
	Read
)

func (a Access) String() string {
	switch a {
	case Configure:
		return "configure"
	case Write:
		return "write"
	case Read:
		return "read"
	}
	return "unknown"
}

func compile(p string) (*regexp.Regexp, error) {
	if p == "" {
		p = "^$"
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("%w: regular expression %q: %v", ErrInvalid, p, err)
	}
	return re, nil
}

// SetPermission sets a user's permissions in a vhost (both must exist).
func (s *Store) SetPermission(user, vhost string, p Permission) error {
	for _, re := range []string{p.Configure, p.Write, p.Read} {
		if _, err := compile(re); err != nil {
			return err
		}
	}
	return s.update(func(st *state) error {
		if _, ok := st.Users[user]; !ok {
			return fmt.Errorf("user %q: %w", user, ErrNotFound)
		}
		if _, ok := st.Vhosts[vhost]; !ok {
			return fmt.Errorf("vhost %q: %w", vhost, ErrNotFound)
		}
		if st.Permissions[vhost] == nil {
			st.Permissions[vhost] = map[string]Permission{}
		}
		st.Permissions[vhost][user] = p
		return nil
	}, Event{Kind: "user-changed", Name: user})
}

// ClearPermission removes a user's permissions in a vhost.
func (s *Store) ClearPermission(user, vhost string) error {
	return s.update(func(st *state) error {
		if _, ok := st.Permissions[vhost][user]; !ok {
			return fmt.Errorf("permissions of %q in vhost %q: %w", user, vhost, ErrNotFound)
		}
		delete(st.Permissions[vhost], user)
		return nil
	}, Event{Kind: "user-changed", Name: user})
}

// Permission returns a user's permissions in a vhost.
func (s *Store) Permission(user, vhost string) (Permission, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.st.Permissions[vhost][user]
	return p, ok
}

// Permissions lists every entry, by vhost then user.
func (s *Store) Permissions() []UserPermission {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []UserPermission
	for vh, ps := range s.st.Permissions {
		for u, p := range ps {
			out = append(out, UserPermission{User: u, Vhost: vh, Permission: p})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Vhost != out[j].Vhost {
			return out[i].Vhost < out[j].Vhost
		}
		return out[i].User < out[j].User
	})
	return out
}

// CanAccessVhost reports whether the user has an entry for the vhost (RabbitMQ's check at
// connection.open).
func (s *Store) CanAccessVhost(user, vhost string) bool {
	_, ok := s.Permission(user, vhost)
	return ok && s.HasVhost(vhost)
}

// Check reports whether user may have access a on the named resource in vhost. The
// default exchange is named "" and checked as "amq.default".
func (s *Store) Check(user, vhost string, a Access, name string) bool {
	p, ok := s.Permission(user, vhost)
	if !ok {
		return false
	}
	var pat string
	switch a {
	case Configure:
		pat = p.Configure
	case Write:
		pat = p.Write
	case Read:
		pat = p.Read
	}
	if pat == ".*" {
		return true // the usual grant, matching every name (unanchored); checked per publish
	}
	if name == "" {
		name = "amq.default"
	}
	re := s.regexp(pat)
	return re != nil && re.MatchString(name)
}

func (s *Store) regexp(p string) *regexp.Regexp {
	s.mu.RLock()
	re, ok := s.re[p]
	s.mu.RUnlock()
	if ok {
		return re
	}
	re, err := compile(p)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	if len(s.re) > 1024 {
		clear(s.re)
	}
	s.re[p] = re
	s.mu.Unlock()
	return re
}
