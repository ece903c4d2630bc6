package quorum

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/yardmq/yard/internal/cluster"
)

// Declaration kinds.
const (
	KindQueue  = ""       // a quorum queue: Name, Args
	KindBind   = "bind"   // a binding to a quorum queue: Name identifies it, Args encode it
	KindUnbind = "unbind" // removes the KindBind of the same Name
	KindDelete = "delete" // deletes the quorum queue Name and the bindings to it
)

// Declaration is a replicated declaration: a quorum queue (its vhost, name and encoded
// arguments, as the vhost encodes them), or a binding routing to one (with its source
// exchange), encoded by the vhost.
type Declaration struct {
	Kind  string `json:"kind,omitempty"`
	VHost string `json:"vhost"`
	Name  string `json:"name"`
	Args  []byte `json:"args"`
	// Index is, for a queue, the topology group's entry that declared it (0 in declarations
	// recorded before deletion existed): its Raft group id derives from it, so that a queue
	// deleted and declared again gets a new group. Attach of a KindDelete carries the deleted
	// queue's Index.
	Index uint64 `json:"index,omitempty"`
	// Indexed marks a queue declared since Index exists: one declared before keeps the group
	// id derived without it when its entry is applied again (a restart replaying the log).
	Indexed bool `json:"indexed,omitempty"`
	// Exact marks a KindDelete of the queue declared by entry Index only: a queue of the same
	// name declared again since is kept (the deletion was decided by the earlier queue's
	// state, and may be retried late).
	Exact bool `json:"exact,omitempty"`
}

// Declarations is the state machine of the cluster's AMQP topology group: the quorum
// queues declared anywhere in the cluster and the bindings to them, in declaration order. Applying a new one calls
// attach on every node (it creates the queue's replica and Raft group there); so does a
// restore, for every declaration (attach must accept a queue it already has).
//
// Until Start, nothing is attached but deletions: a snapshot restored while the group is
// created (its recovery, under the Raft host's lock, where attaching a queue would create
// its group) and the entries applied before Start are only recorded; Start attaches them.
type Declarations struct {
	attach func(Declaration) error

	amu     sync.Mutex // serializes attaching: Apply, Restore and Start
	started bool       // guarded by amu

	mu    sync.Mutex
	decls []Declaration
}

// Start attaches the declarations restored and applied so far, and from then on every new
// one as it is applied. Call it once the group is created.
func (s *Declarations) Start() error {
	s.amu.Lock()
	defer s.amu.Unlock()
	s.started = true
	var errs []error
	for _, d := range s.List() {
		if err := s.attach(d); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cannot attach quorum queues: %v", errs)
	}
	return nil
}

// NewDeclarations is the empty state machine; attach is called from the group's apply.
func NewDeclarations(attach func(Declaration) error) *Declarations {
	return &Declarations{attach: attach}
}

var _ cluster.StateMachine = (*Declarations)(nil)

// EncodeDeclare is the command declaring d.
func EncodeDeclare(d Declaration) []byte {
	if d.Kind == KindQueue {
		d.Indexed = true
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic("BUG: cannot encode a declaration: " + err.Error())
	}
	return append([]byte{cmdVersion}, b...)
}

// Apply records a declaration (a redeclaration of a known queue changes nothing: the first
// one's arguments stay) and attaches the queue; the error of attach is the proposer's.
func (s *Declarations) Apply(e cluster.Entry) (any, error) {
	if len(e.Data) == 0 || e.Data[0] != cmdVersion {
		return nil, fmt.Errorf("cannot apply entry %d: %w", e.Index, ErrBadCommand)
	}
	var d Declaration
	if err := json.Unmarshal(e.Data[1:], &d); err != nil {
		return nil, fmt.Errorf("cannot apply entry %d: %w: %v", e.Index, ErrBadCommand, err)
	}
	s.amu.Lock()
	defer s.amu.Unlock()
	if d.Kind == KindDelete {
		return s.applyDelete(d)
	}
	kind := d.Kind
	if kind == KindUnbind {
		kind = KindBind
	}
	if kind == KindQueue && d.Indexed {
		d.Index = e.Index
	}
	s.mu.Lock()
	i := slices.IndexFunc(s.decls, func(x Declaration) bool { return x.Kind == kind && x.VHost == d.VHost && x.Name == d.Name })
	switch {
	case d.Kind == KindUnbind && i < 0, d.Kind != KindUnbind && i >= 0:
		s.mu.Unlock()
		return nil, nil // nothing changes
	case d.Kind == KindUnbind:
		s.decls = slices.Delete(s.decls, i, i+1)
	default:
		s.decls = append(s.decls, d)
	}
	s.mu.Unlock()
	if !s.started {
		return nil, nil // Start attaches it
	}
	return nil, s.attach(d)
}

// applyDelete removes a queue's declaration and the bindings to it, and attaches the
// deletion (with the queue's Index) so every node removes the queue and its group (before
// Start too: a group recovered from the WAL is removed though no queue was attached). Deleting
// a queue the group does not know changes nothing.
func (s *Declarations) applyDelete(d Declaration) (any, error) {
	s.mu.Lock()
	i := slices.IndexFunc(s.decls, func(x Declaration) bool { return x.Kind == KindQueue && x.VHost == d.VHost && x.Name == d.Name })
	if i < 0 || d.Exact && s.decls[i].Index != d.Index {
		s.mu.Unlock()
		return nil, nil
	}
	d.Index = s.decls[i].Index
	s.decls = slices.DeleteFunc(s.decls, func(x Declaration) bool {
		if x.VHost != d.VHost {
			return false
		}
		return (x.Kind == KindQueue && x.Name == d.Name) || (x.Kind == KindBind && BindingQueue(x.Name) == d.Name)
	})
	s.mu.Unlock()
	return nil, s.attach(d)
}

// BindingQueue is the queue of a binding declaration's Name (exchange, queue, key and
// arguments joined by NUL bytes, as the vhost names them).
func BindingQueue(name string) string {
	parts := strings.SplitN(name, "\x00", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// List is the declarations, in order.
func (s *Declarations) List() []Declaration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.decls)
}

// Snapshot encodes the declarations.
func (s *Declarations) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.decls)
}

// Restore replaces the declarations and attaches every one. What this node had attached
// and the snapshot no longer holds (a node behind, which missed a deletion the snapshot
// already covers) is detached first: a queue (KindDelete, with its Index, so its group goes)
// or a binding (KindUnbind). A queue of the same name declared again since is a different
// declaration (another Index): the old one is detached, the new one attached.
func (s *Declarations) Restore(data []byte) error {
	var decls []Declaration
	if err := json.Unmarshal(data, &decls); err != nil {
		return fmt.Errorf("cannot decode quorum queue declarations: %w", err)
	}
	s.amu.Lock()
	defer s.amu.Unlock()
	s.mu.Lock()
	old := s.decls
	s.decls = decls
	s.mu.Unlock()
	if !s.started {
		return nil // Start attaches them (and nothing was attached before)
	}
	var errs []error
	for _, d := range old {
		if slices.ContainsFunc(decls, func(x Declaration) bool {
			return x.Kind == d.Kind && x.VHost == d.VHost && x.Name == d.Name && x.Index == d.Index
		}) {
			continue
		}
		switch d.Kind {
		case KindQueue:
			d.Kind = KindDelete
		case KindBind:
			if slices.ContainsFunc(old, func(x Declaration) bool { // goes with its queue
				return x.Kind == KindQueue && x.VHost == d.VHost && x.Name == BindingQueue(d.Name)
			}) && !slices.ContainsFunc(decls, func(x Declaration) bool {
				return x.Kind == KindQueue && x.VHost == d.VHost && x.Name == BindingQueue(d.Name)
			}) {
				continue
			}
			d.Kind = KindUnbind
		default:
			continue
		}
		if err := s.attach(d); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range decls {
		if err := s.attach(d); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cannot attach restored quorum queues: %v", errs)
	}
	return nil
}
