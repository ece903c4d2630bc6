package broker

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/yardmq/yard/internal/atomicfile"
	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/platform"
)

const (
	// metaFormatVersion is bumped whenever the data directory's layout changes incompatibly.
	metaFormatVersion = 1
)

// dataDirMeta is yard.meta, a JSON object written once when the directory is created:
//
//	{"format_version": 1, "cluster_id": "<22 chars base64url>"}
//
// Its presence is how yard tells its own directory from one that "holds something else".
type dataDirMeta struct {
	FormatVersion int    `json:"format_version"`
	ClusterID     string `json:"cluster_id"`
}

type dataDir struct {
	meta dataDirMeta
	lock *os.File
}

// openDataDir creates the directory if needed, refuses a directory that holds something other
// than yard's data, and takes an exclusive lock so that a second `yard serve` is refused.
func openDataDir(l datadir.Layout) (*dataDir, error) {
	if l.Root() == "" {
		return nil, errors.New("cannot open data dir: --data-dir is empty")
	}
	if err := datadir.MkdirAll(l.Root()); err != nil {
		return nil, fmt.Errorf("cannot create data dir: %w", err)
	}
	lock, err := lockDataDir(l)
	if err != nil {
		return nil, err
	}
	meta, err := readOrCreateMeta(l)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &dataDir{meta: meta, lock: lock}, nil
}

// DataDirInUseError is returned when another process holds the data directory's lock.
type DataDirInUseError struct{ Dir, PID string }

func (e *DataDirInUseError) Error() string {
	return fmt.Sprintf("data dir %s is in use by another yard process (pid %s); stop it or choose another --data-dir", e.Dir, e.PID)
}

// OpenUsers opens the user store of a data directory no server is using (the CLI's offline
// mode), holding the directory's lock until release. A directory in use is refused with a
// *DataDirInUseError. A new store gets the default user (guest/guest) as at a first start.
func OpenUsers(dir string) (users *auth.Store, release func() error, err error) {
	l := datadir.New(dir)
	dd, err := openDataDir(l)
	if err != nil {
		return nil, nil, err
	}
	users, err = auth.Open(auth.Options{Path: l.Users()})
	if err != nil {
		return nil, nil, errors.Join(err, dd.close())
	}
	return users, dd.close, nil
}

func lockDataDir(l datadir.Layout) (*os.File, error) {
	dir, name := l.Root(), l.Lock()
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, datadir.FilePerm)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock file: %w", err)
	}
	if err := platform.LockFile(f); err != nil {
		holder, _ := os.ReadFile(name)
		f.Close()
		if errors.Is(err, platform.ErrLocked) {
			return nil, &DataDirInUseError{Dir: dir, PID: strings.TrimSpace(string(holder))}
		}
		return nil, fmt.Errorf("cannot lock %s: %w", name, err)
	}
	// The pid is only informative (for the message above); the flock is what excludes.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func readOrCreateMeta(l datadir.Layout) (dataDirMeta, error) {
	dir, name := l.Root(), l.Meta()
	data, err := os.ReadFile(name)
	switch {
	case err == nil:
		var m dataDirMeta
		if err := json.Unmarshal(data, &m); err != nil || m.FormatVersion == 0 {
			return m, fmt.Errorf("data dir %s: %s is not valid yard metadata", dir, name)
		}
		if m.FormatVersion > metaFormatVersion {
			return m, fmt.Errorf("data dir %s was written by a newer yard (format %d, this binary reads up to %d)",
				dir, m.FormatVersion, metaFormatVersion)
		}
		return m, nil
	case !errors.Is(err, os.ErrNotExist):
		return dataDirMeta{}, fmt.Errorf("cannot read %s: %w", name, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return dataDirMeta{}, fmt.Errorf("cannot list data dir: %w", err)
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(l.Lock()) {
			return dataDirMeta{}, fmt.Errorf("data dir %s holds something else (%s) and no %s; "+
				"point --data-dir at an empty or new directory", dir, e.Name(), filepath.Base(name))
		}
	}
	m := dataDirMeta{FormatVersion: metaFormatVersion, ClusterID: newClusterID()}
	data, _ = json.Marshal(m)
	if err := atomicfile.Write(name, append(data, '\n'), datadir.FilePerm); err != nil {
		return m, err
	}
	return m, nil
}

// newClusterID is 16 random bytes in unpadded base64url, the shape Kafka uses for cluster IDs.
func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var sb strings.Builder
	var acc, bits uint
	for _, c := range b {
		acc = acc<<8 | uint(c)
		bits += 8
		for bits >= 6 {
			bits -= 6
			sb.WriteByte(alphabet[(acc>>bits)&63])
		}
	}
	if bits > 0 {
		sb.WriteByte(alphabet[(acc<<(6-bits))&63])
	}
	return sb.String()
}

// ClusterID is the data directory's permanent identity (Kafka clients see it in Metadata).
func (b *Broker) ClusterID() string { return b.data.meta.ClusterID }

func (d *dataDir) close() error {
	if d.lock == nil {
		return nil
	}
	err := d.lock.Close() // closing the descriptor releases the flock
	d.lock = nil
	if err != nil {
		return fmt.Errorf("cannot release data dir lock: %w", err)
	}
	return nil
}
