package broker

import (
	"strings"
	"testing"

	"github.com/yardmq/yard/internal/log"
)

// TestKafkaJournalRefusedOutsideItsScope: --kafka-journal is for a single node under
// --sync-policy always; with --peers or another policy the broker refuses to start, before it
// touches the data directory.
func TestKafkaJournalRefusedOutsideItsScope(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"peers":    {func(c *Config) { c.Peers = "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3" }, "--peers"},
		"interval": {func(c *Config) { c.SyncPolicy = log.SyncInterval }, "--sync-policy always"},
	} {
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.KafkaJournal = true
		c.edit(&cfg)
		b, err := New(cfg)
		if err == nil {
			b.Shutdown(t.Context())
			t.Fatalf("%s: New accepted --kafka-journal", name)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to name %s", name, err, c.want)
		}
	}
}
