package log

import (
	"errors"
	"testing"
)

// AppendCheckedNoWait trusts the caller's CRC check but still refuses what would break the
// log's structure: anything but exactly one whole batch.
func TestAppendCheckedNoWait(t *testing.T) {
	t.Parallel()
	l := mustOpen(t, t.TempDir(), Options{})
	defer l.Close()
	good := makeBatch(2, 10, 5, 1)
	badMagic := makeBatch(2, 10, 5, 1)
	badMagic[16] = 1
	for name, b := range map[string][]byte{
		"magic": badMagic, "short": good[:30], "truncated": good[:len(good)-1],
		"two batches": append(append([]byte(nil), good...), good...), "empty": nil,
	} {
		if _, err := l.AppendCheckedNoWait(b); !errors.Is(err, ErrCorruptBatch) {
			t.Errorf("%s: got %v, want ErrCorruptBatch", name, err)
		}
	}
	if l.EndOffset() != 0 || l.Size() != 0 {
		t.Fatalf("log changed by refused appends: end %d size %d", l.EndOffset(), l.Size())
	}
	res, err := l.AppendCheckedNoWait(append([]byte(nil), good...))
	if err != nil || res.BaseOffset != 0 || res.LastOffset != 1 || res.Batches != 1 {
		t.Fatalf("append: %+v %v", res, err)
	}
	if err := l.WaitDurable(t.Context(), res.LastOffset); err != nil {
		t.Fatal(err)
	}
	checkBatches(t, readAll(t, l), [][]byte{good})
}
