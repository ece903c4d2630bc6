//go:build !unix

package harness

// Pause and Resume need SIGSTOP and SIGCONT, which only Unix systems have; the tests that
// pause a process run on Linux (the package still builds elsewhere, for `make cross`).

// Pause is not supported off Unix.
func (y *Yard) Pause() { panic("BUG: harness: Pause needs SIGSTOP (Unix only)") }

// Resume is not supported off Unix.
func (y *Yard) Resume() { panic("BUG: harness: Resume needs SIGCONT (Unix only)") }
