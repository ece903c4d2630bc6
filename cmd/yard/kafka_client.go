package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultBootstrap is where Kafka's own tools look by default.
const defaultBootstrap = "127.0.0.1:9092"

// addBootstrapFlag adds --bootstrap-server, as Kafka's own tools name it.
func addBootstrapFlag(fs *pflag.FlagSet, dst *string) {
	fs.StringVar(dst, "bootstrap-server", defaultBootstrap, "Kafka address HOST:PORT (comma-separated for several)")
}

// newAdminGroupCmd is a parent of admin subcommands (`yard topics`, `yard groups`): it holds
// --bootstrap-server for all of them.
func newAdminGroupCmd(use, short string, subs ...func(bootstrap *string) *cobra.Command) *cobra.Command {
	bootstrap := new(string)
	cmd := &cobra.Command{Use: use, Short: short}
	addBootstrapFlag(cmd.PersistentFlags(), bootstrap)
	for _, sub := range subs {
		cmd.AddCommand(sub(bootstrap))
	}
	return cmd
}

func newKafkaClient(bootstrap string, opts ...kgo.Opt) (*kgo.Client, error) {
	opts = append([]kgo.Opt{kgo.SeedBrokers(strings.Split(bootstrap, ",")...)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot create Kafka client: %w", err)
	}
	return cl, nil
}

func newAdmin(bootstrap string) (*kadm.Client, func(), error) {
	cl, err := newKafkaClient(bootstrap)
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// interruptible is the command's context, cancelled by SIGINT/SIGTERM.
func interruptible(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// parseConfigs turns repeated --config k=v into a map.
func parseConfigs(kvs []string) (map[string]*string, error) {
	out := map[string]*string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("cannot parse --config %q: want NAME=VALUE", kv)
		}
		out[k] = &v
	}
	return out, nil
}

// withAdmin is the RunE of an admin subcommand: it connects to --bootstrap-server, makes the
// command's context cancellable by SIGINT/SIGTERM, runs fn and closes the client.
func withAdmin(bootstrap *string, fn func(ctx context.Context, cmd *cobra.Command, args []string, adm *kadm.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		adm, done, err := newAdmin(*bootstrap)
		if err != nil {
			return err
		}
		defer done()
		ctx, cancel := interruptible(cmd)
		defer cancel()
		return fn(ctx, cmd, args, adm)
	}
}
