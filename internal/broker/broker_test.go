package broker

import (
	"testing"

	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/platform"
)

func TestSegmentFileBound(t *testing.T) {
	t.Parallel()
	if got := segmentFileBound(7); got != 7 {
		t.Fatalf("configured 7: %d", got)
	}
	got := segmentFileBound(0)
	limit, err := platform.OpenFileLimit()
	switch {
	case err != nil:
		if got != log.DefaultMaxOpenSegmentFiles {
			t.Fatalf("unknown limit: %d, want the default %d", got, log.DefaultMaxOpenSegmentFiles)
		}
	case got < 64 || got > 65536 || (limit >= 256 && uint64(got) > limit/4):
		t.Fatalf("limit %d: bound %d, want a quarter of it within [64, 65536]", limit, got)
	}
}
