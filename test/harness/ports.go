package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// Ports a test must name before the process that listens on them starts (a cluster's
// --cluster-listen and --peers) cannot be taken with port 0: a port found free by listening
// and closing can be handed by the kernel to any other socket bound to port 0 before yard
// binds it (seen in the full suite, where many tests run at once). ReservePort therefore picks
// from below Linux's default ephemeral range (32768-60999), where the kernel hands out no port
// of its own; only another test choosing the same random port could collide.
const (
	reservedPortMin = 20000
	reservedPortMax = 32767
)

// handedOut are the ports ReservePort returned in this process: a port is never handed out
// twice, so parallel tests of one package cannot collide (tests of other packages, in other
// processes, still can, with a few ports each out of 12,768).
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// ReservePort returns "127.0.0.1:PORT" with a port outside the ephemeral range that was free
// when it was chosen and was not handed out before in this process.
func ReservePort(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	for range 1000 {
		port := reservedPortMin + rand.IntN(reservedPortMax-reservedPortMin+1)
		if handedOut.ports[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		handedOut.ports[port] = true
		return addr
	}
	t.Fatal("harness: no free port below the ephemeral range")
	return ""
}
