package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/yardmq/yard/internal/broker"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/platform"
)

// shutdownTimeout bounds how long SIGTERM waits for in-flight work before closing anyway.
const shutdownTimeout = 30 * time.Second

func newServeCmd() *cobra.Command {
	cfg := broker.DefaultConfig()
	var (
		configFile string
		logLevel   string
		syncPolicy string
		gcHeadroom uint64
		schedBatch bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the broker",
		Long: `Run the broker: Kafka protocol, AMQP 0-9-1 and the HTTP admin plane.

Every flag can also be set in the environment as YARD_<FLAG> (dashes become underscores,
e.g. YARD_DATA_DIR) or in a config file of "key = value" lines (--config), keys named
like the flags. Precedence: flag, then environment, then config file, then default.
An empty listen address disables that listener.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndFile(cmd.Flags(), configFile); err != nil {
				return err
			}
			if err := applyAMQPPassFile(cmd.Flags(), &cfg.AMQP); err != nil {
				return err
			}
			logger, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			if cfg.SyncPolicy, err = log.ParseSyncPolicy(syncPolicy); err != nil {
				return err
			}
			cfg.Logger = logger
			if cmd.Flags().Changed("amqp-default-pass") {
				logger.Warn("--amqp-default-pass on the command line is visible to every local user in the process list; " +
					"use YARD_AMQP_DEFAULT_PASS or --amqp-default-pass-file")
			}
			if schedBatch {
				if err := platform.SetBatchScheduling(); err != nil {
					logger.Warn("running under the default scheduling policy", "err", err)
				}
			}
			defer startHeapTuner(gcHeadroom)()
			return serve(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "optional config file of key = value lines")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory holding all of yard's data")
	f.Int32Var(&cfg.NodeID, "node-id", cfg.NodeID, "this broker's id, reported to clients wherever a broker is named (Kafka's node.id)")
	f.StringVar(&cfg.Peers, "peers", "",
		"every member of the cluster, this node included, as 1=HOST:PORT,2=HOST:PORT,3=HOST:PORT (empty: a single node); experimental, see README's Cluster")
	f.BoolVar(&cfg.AdoptSingleNodeData, "adopt-single-node-data", false,
		"with --peers, on a data directory a single node wrote: make its topics (ids, configs, logs at their offsets), committed offsets, users and ACLs the new cluster's; see README's Migrating a single node")
	f.StringVar(&cfg.ClusterListen, "cluster-listen", "", "where this node accepts its peers' connections, HOST:PORT (default: its own address in --peers)")
	f.StringVar(&cfg.KafkaListen, "kafka-listen", cfg.KafkaListen,
		"Kafka listeners, comma-separated, in Kafka's syntax: PLAINTEXT://H:P, SSL://H:P, SASL_PLAINTEXT://H:P, SASL_SSL://H:P; a bare H:P is PLAINTEXT (empty: disabled)")
	f.StringVar(&cfg.AMQPListen, "amqp-listen", cfg.AMQPListen, "AMQP 0-9-1 listen address (empty: disabled)")
	f.StringVar(&cfg.AMQPSListen, "amqps-listen", cfg.AMQPSListen, "AMQP 0-9-1 over TLS listen address, e.g. :5671 (empty: disabled)")
	f.StringVar(&cfg.HTTPListen, "http-listen", cfg.HTTPListen, "HTTP admin listen address (empty: disabled)")
	f.StringVar(&cfg.HTTPSListen, "https-listen", cfg.HTTPSListen, "HTTP admin over TLS listen address (empty: disabled)")
	f.StringVar(&cfg.ClusterTLSCAFile, "cluster-tls-ca-file", "", "PEM CA certificates of the cluster: turns on mutual TLS on --cluster-listen and the connections to --peers; the node presents --tls-cert-file, which must carry the URI SAN yard-node:<node id> (reloaded on SIGHUP)")
	f.StringVar(&cfg.TLS.CertFile, "tls-cert-file", "", "PEM certificate chain of every TLS listener (reloaded on SIGHUP)")
	f.StringVar(&cfg.TLS.KeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file (reloaded on SIGHUP)")
	f.StringVar(&cfg.TLS.ClientCAFile, "tls-client-ca-file", "", "PEM CA certificates that client certificates must chain to (mTLS; reloaded on SIGHUP)")
	f.StringVar((*string)(&cfg.TLS.ClientAuth), "tls-client-auth", "none",
		"client certificates on TLS listeners, as Kafka's ssl.client.auth: none, requested (verified if given) or required")
	f.BoolVar(&cfg.HTTPPprof, "http-pprof", cfg.HTTPPprof, "serve Go's profiler under /debug/pprof/ on the HTTP listener")
	f.BoolVar(&cfg.AllowUnauthenticated, "allow-unauthenticated", cfg.AllowUnauthenticated,
		"let listeners without authentication (Kafka PLAINTEXT) serve clients from any address; without it they serve loopback clients only")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&syncPolicy, "sync-policy", "always",
		"when acknowledged data is fsynced: always (before every acknowledgement, group-committed), interval, never (opt-in, weaker)")
	f.DurationVar(&cfg.SyncInterval, "sync-interval", cfg.SyncInterval, "fsync period for --sync-policy=interval")
	f.IntVar(&cfg.MaxOpenSegmentFiles, "max-open-segment-files", 0,
		"log segment files kept open at once across all topics and queues; the least recently used is closed past it (0: a quarter of the open-file limit, 64 to 65536)")
	f.Uint64Var(&gcHeadroom, "gc-headroom-bytes", defaultGCHeadroom,
		"least heap growth between garbage collections (0: Go's GOGC policy alone; a GOGC environment variable also turns it off)")
	f.BoolVar(&schedBatch, "sched-batch", true,
		"run the broker's threads under Linux's SCHED_BATCH policy: a woken thread does not preempt a running one (false: the default policy)")
	addBrokerFlags(f, &cfg)
	return cmd
}

// serve runs the broker until SIGINT or SIGTERM, then shuts it down gracefully: stop accepting,
// finish in-flight requests, flush and fsync, release the data dir, exit 0.
func serve(ctx context.Context, cfg broker.Config) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Version = version
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	if err := b.StartContext(ctx); err != nil {
		// Start released what it had opened; this releases the data directory. Bounded all
		// the same: a failed start must exit, never hang.
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return errors.Join(err, b.Shutdown(sctx))
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hup:
			// New TLS handshakes take the reloaded certificate; connections stay.
			if err := b.ReloadTLS(); err != nil {
				cfg.Logger.Error("cannot reload TLS material; keeping the previous one", "err", err)
			} else {
				cfg.Logger.Info("TLS material reloaded")
			}
		}
	}
	cfg.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		return fmt.Errorf("cannot shut down cleanly: %w", err)
	}
	cfg.Logger.Info("stopped")
	return nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("cannot parse --log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// applyEnvAndFile fills every flag the command line did not set, first from YARD_<FLAG>, then
// from the config file.
func applyEnvAndFile(fs *pflag.FlagSet, configFile string) error {
	if !fs.Changed("config") {
		if v, ok := os.LookupEnv("YARD_CONFIG"); ok {
			configFile = v
		}
	}
	fileValues := map[string]string{}
	if configFile != "" {
		var err error
		if fileValues, err = readConfigFile(configFile); err != nil {
			return err
		}
		for k := range fileValues {
			if fs.Lookup(k) == nil {
				return fmt.Errorf("config file %s: unknown key %q", configFile, k)
			}
		}
	}
	var firstErr error
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || fl.Name == "config" || firstErr != nil || aliasChanged(fs, fl.Name) {
			return
		}
		env := "YARD_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		src := env
		if !ok {
			v, ok = fileValues[fl.Name]
			src = configFile
		}
		if ok {
			if err := fl.Value.Set(v); err != nil {
				firstErr = fmt.Errorf("cannot set %s from %s: %w", fl.Name, src, err)
			}
		}
	})
	return firstErr
}

// readConfigFile parses "key = value" lines; '#' starts a comment line; values may be quoted so
// that an empty listen address can be written as key = "".
func readConfigFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %w", err)
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("config file %s line %d: want key = value, got %q", path, i+1, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	return out, nil
}
