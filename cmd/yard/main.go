// Command yard is one broker that speaks both the Kafka wire protocol and AMQP 0-9-1 over one
// storage engine. This package is deliberately thin: it parses flags and hands over to
// internal/broker (the server) or to client subcommands.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "yard:", err)
		os.Exit(1)
	}
}
