//go:build unix

package harness

import "syscall"

// Pause stops the process with SIGSTOP (it keeps its sockets and memory, answers nothing).
func (y *Yard) Pause() { y.sendOnly(syscall.SIGSTOP) }

// Resume continues a paused process with SIGCONT.
func (y *Yard) Resume() { y.sendOnly(syscall.SIGCONT) }
