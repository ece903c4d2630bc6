package amqp

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
)

// TestFrameReadTimeout: a client without heartbeats that starts a frame and then stops used
// to hold its connection for ever. Now the rest of a begun frame is due within
// FrameReadTimeout; a connection idle between frames is not affected.
func TestFrameReadTimeout(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{FrameReadTimeout: 50 * time.Millisecond})
	idle := rawDial(t, url, 0)
	slow := rawDial(t, url, 0)
	slow.write(wire.AppendMethodFrame(nil, 1, &wire.ChannelOpen{})[:5])
	if _, err := slow.fr.ReadFrame(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection with half a frame not dropped: %v", err)
	}
	// The idle connection, older than the slow one's drop, still serves.
	idle.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
}
