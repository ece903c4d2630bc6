package broker

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/tlsconf/tlsconftest"
)

// TestClusterTLS: three nodes whose cluster port speaks mutual TLS (--cluster-tls-ca-file)
// replicate a topic's creation and its records; the node certificates are reloaded.
func TestClusterTLS(t *testing.T) {
	t.Parallel()
	ca := tlsconftest.NewCA(t, "cluster CA")
	const n = 3
	files := make([]tlsconftest.Files, n)
	for i := range n {
		files[i] = ca.WriteNode(t, t.TempDir(), uint64(i+1))
	}
	c := startNodesConfig(t, n, nil, func(i int, cfg *Config) {
		cfg.TLS.CertFile, cfg.TLS.KeyFile = files[i].Cert, files[i].Key
		cfg.ClusterTLSCAFile = files[i].ClientCA
	})
	for _, b := range c.broker {
		if b.clusterTLS == nil {
			t.Fatal("cluster TLS not configured")
		}
	}
	ctx := context.Background()
	retry(t, func() error {
		r, err := c.admin(0).CreateTopic(ctx, 1, -1, nil, "secure")
		if err == nil {
			err = r.Err
		}
		return err
	})
	c.waitTopic("secure", "", "")
	// A certificate rotation (SIGHUP) keeps the cluster going.
	for i, b := range c.broker {
		ca.WriteNode(t, filepath.Dir(files[i].Cert), uint64(i+1))
		if err := b.ReloadTLS(); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka...), kgo.DefaultProduceTopic("secure"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100), kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 200 {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("r-%d", i))})
	}
	pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	// Every node holds the records (the followers got them over TLS); read back from the last.
	for i, b := range c.broker {
		tp, _ := b.streams.Topic("secure")
		waitFor(t, fmt.Sprintf("node %d's records", i+1), func() bool { return tp.Partition(0).HighWatermark() >= 200 })
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[n-1]), kgo.ConsumeTopics("secure"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]int{}
	cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
	defer ccancel()
	for len(seen) < len(recs) {
		fs := cons.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(seen), len(recs))
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	for _, r := range recs {
		if seen[string(r.Value)] != 1 {
			t.Fatalf("record %q read %d times", r.Value, seen[string(r.Value)])
		}
	}
}

// TestClusterTLSConfig: --cluster-tls-ca-file needs --peers and the node's certificate.
func TestClusterTLSConfig(t *testing.T) {
	ca := tlsconftest.NewCA(t, "cluster CA")
	f := ca.WriteNode(t, t.TempDir(), 1)
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
	}{
		{"no peers", func(c *Config) { c.Peers = "" }},
		{"no certificate", func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = "", "" }},
	} {
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.Peers = "1=127.0.0.1:1"
		cfg.TLS.CertFile, cfg.TLS.KeyFile = f.Cert, f.Key
		cfg.ClusterTLSCAFile = f.ClientCA
		tc.tweak(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
