//go:build !unix

package amqp

import "time"

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }
