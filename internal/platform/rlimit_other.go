//go:build !unix

package platform

// OpenFileLimit is unknown here (Windows bounds handles by memory, not by a limit).
func OpenFileLimit() (uint64, error) { return 0, ErrUnsupported }
