package adversarial_test

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yardmq/yard/test/harness"
)

const (
	mutationWorkers  = 4               // connections replaying mutated sessions at once
	replayIODeadline = 2 * time.Second // bound on one replay's writes and reads
	livenessEvery    = 100             // rounds between checks that yard still serves a fresh client
)

// interesting values for overwritten length, count and size fields: the boundaries where
// decoders go wrong (zero, -1, sign bits, maxima).
var interesting = [][]byte{
	{0x00}, {0xff}, {0x7f}, {0x80},
	{0x00, 0x00}, {0xff, 0xff}, {0x7f, 0xff}, {0x80, 0x00},
	{0x00, 0x00, 0x00, 0x00}, {0xff, 0xff, 0xff, 0xff}, {0x7f, 0xff, 0xff, 0xff}, {0x80, 0x00, 0x00, 0x00},
	{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe},
}

// mutateBody returns a mutated copy of b, by one of the classic strategies: bit flips,
// boundary values over a field, truncation, junk appended, a slice repeated, random bytes.
func mutateBody(rng *rand.Rand, b []byte) []byte {
	out := append([]byte(nil), b...)
	if len(out) == 0 {
		return append(out, byte(rng.IntN(256)))
	}
	switch rng.IntN(6) {
	case 0:
		for range 1 + rng.IntN(4) {
			out[rng.IntN(len(out))] ^= 1 << rng.IntN(8)
		}
	case 1:
		v := interesting[rng.IntN(len(interesting))]
		at := rng.IntN(len(out))
		copy(out[at:], v)
	case 2:
		out = out[:rng.IntN(len(out))]
	case 3:
		junk := make([]byte, 1+rng.IntN(64))
		for i := range junk {
			junk[i] = byte(rng.IntN(256))
		}
		out = append(out, junk...)
	case 4:
		from := rng.IntN(len(out))
		to := from + rng.IntN(len(out)-from+1)
		out = append(out[:to:to], append(append([]byte(nil), out[from:to]...), out[to:]...)...)
	case 5:
		at := rng.IntN(len(out))
		for i := at; i < len(out) && i < at+1+rng.IntN(16); i++ {
			out[i] = byte(rng.IntN(256))
		}
	}
	return out
}

// mutateKafka mutates a request frame's body; most of the time the size prefix is made to
// match (so that the mutated request is decoded), otherwise it is left to disagree.
func mutateKafka(rng *rand.Rand, frame []byte) []byte {
	if rng.IntN(2) == 0 {
		if out := mutateProduceRecords(rng, frame); out != nil {
			return out
		}
	}
	body := mutateBody(rng, frame[4:])
	out := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if rng.IntN(4) == 0 {
		out = binary.BigEndian.AppendUint32(nil, rng.Uint32())
	}
	return append(out, body...)
}

// mutateAMQP mutates a frame (or the protocol header); most of the time the size field and the
// frame-end octet are made right again so that the mutation reaches the method decoders.
func mutateAMQP(rng *rand.Rand, frame []byte) []byte {
	if len(frame) < 8 || frame[0] == 'A' { // the protocol header
		return mutateBody(rng, frame)
	}
	if rng.IntN(4) == 0 {
		return mutateBody(rng, frame)
	}
	payload := mutateBody(rng, frame[7:len(frame)-1])
	out := append([]byte(nil), frame[:3]...)
	if rng.IntN(8) == 0 { // the frame type or channel too
		out[rng.IntN(3)] ^= 1 << rng.IntN(8)
	}
	out = binary.BigEndian.AppendUint32(out, uint32(len(payload)))
	out = append(out, payload...)
	return append(out, 0xce)
}

// replayMutated sends frames[:k] as recorded, then a mutation of frames[k], then up to a few of
// the frames after it, half-closes, and reads whatever yard answers until it closes.
func replayMutated(addr string, frames [][]byte, rng *rand.Rand, mutate func(*rand.Rand, []byte) []byte) error {
	c, err := net.DialTimeout("tcp", addr, replayIODeadline)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(replayIODeadline))
	done := make(chan struct{})
	go func() { // drain yard's answers so that its writes never block on us
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		close(done)
	}()
	k := rng.IntN(len(frames))
	var out []byte
	for _, f := range frames[:k] {
		out = append(out, f...)
	}
	out = append(out, mutate(rng, frames[k])...)
	for _, f := range frames[k+1 : min(len(frames), k+1+rng.IntN(4))] {
		out = append(out, f...)
	}
	_, _ = c.Write(out)
	c.(*net.TCPConn).CloseWrite()
	<-done
	return nil
}

// runMutations replays mutated sessions against addr from mutationWorkers connections at once,
// until rounds have run or budget has passed, checking alive() every livenessEvery rounds.
// It returns how many rounds ran.
func runMutations(t *testing.T, y *harness.Yard, addr string, sessions [][][]byte, rounds int,
	budget time.Duration, mutate func(*rand.Rand, []byte) []byte, alive func() error) int {
	t.Helper()
	var next atomic.Int64
	deadline := time.Now().Add(budget)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for w := range mutationWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(rounds) {
					return
				}
				rng := rand.New(rand.NewPCG(uint64(i), 0x5eed))
				frames := sessions[rng.IntN(len(sessions))]
				if err := replayMutated(addr, frames, rng, mutate); err != nil {
					t.Errorf("worker %d, round %d (seed %d): cannot connect: %v", w, i, i, err)
					failed.Store(true)
					return
				}
				if i%livenessEvery == livenessEvery-1 {
					if err := alive(); err != nil {
						t.Errorf("after round %d (seed %d): yard does not serve a fresh client: %v", i, i, err)
						failed.Store(true)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if y.Exited() {
		t.Fatalf("yard exited during the mutation rounds")
	}
	return int(min(next.Load(), int64(rounds)))
}
