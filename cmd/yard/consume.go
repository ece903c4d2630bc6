package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newConsumeCmd is `yard consume --topic T [--from-beginning | --offset N] [--partition P]
// [-n N]`: records' values, one per line, like kafka-console-consumer. Without a start option
// it prints only records produced after it starts. It reads without a consumer group.
func newConsumeCmd() *cobra.Command {
	var (
		bootstrap, topic string
		fromBeginning    bool
		offset           int64
		partition        int32
		maxRecords       int
		printKey         bool
	)
	cmd := &cobra.Command{
		Use:   "consume --topic T [--from-beginning | --offset N] [--partition P] [-n N]",
		Short: "Print records of a topic, one value per line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fromBeginning && cmd.Flags().Changed("offset") {
				return errors.New("--from-beginning and --offset exclude each other")
			}
			start := kgo.NewOffset().AtEnd()
			switch {
			case fromBeginning:
				start = kgo.NewOffset().AtStart()
			case cmd.Flags().Changed("offset"):
				start = kgo.NewOffset().At(offset)
			}
			opts := []kgo.Opt{}
			if cmd.Flags().Changed("partition") {
				opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: start}}))
			} else {
				opts = append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start))
			}
			cl, err := newKafkaClient(bootstrap, opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := interruptible(cmd)
			defer cancel()
			if err := checkTopicExists(ctx, cl, topic); err != nil {
				return err
			}
			err = consumeRecords(ctx, cl, cmd.OutOrStdout(), maxRecords, printKey)
			if errors.Is(err, context.Canceled) {
				return nil // interrupted by the user
			}
			return err
		},
	}
	addBootstrapFlag(cmd.Flags(), &bootstrap)
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "", "topic to read (required)")
	f.BoolVar(&fromBeginning, "from-beginning", false, "start at the earliest offset")
	f.Int64Var(&offset, "offset", 0, "start at this offset")
	f.Int32Var(&partition, "partition", 0, "read only this partition")
	f.IntVarP(&maxRecords, "max-messages", "n", 0, "exit after this many records (0: run until interrupted)")
	f.BoolVar(&printKey, "print-key", false, "print KEY<TAB>VALUE")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

// checkTopicExists fails fast for an unknown topic, where a consumer would wait forever.
func checkTopicExists(ctx context.Context, cl *kgo.Client, topic string) error {
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("cannot look up topic %q: %w", topic, err)
	}
	if d, ok := td[topic]; !ok || d.Err != nil {
		return fmt.Errorf("cannot consume topic %q: %w", topic, errOr(d.Err, errors.New("no such topic")))
	}
	return nil
}

func consumeRecords(ctx context.Context, cl *kgo.Client, out io.Writer, max int, printKey bool) error {
	w := bufio.NewWriter(out)
	defer w.Flush()
	n := 0
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("cannot fetch %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		it := fs.RecordIter()
		for !it.Done() {
			r := it.Next()
			if printKey {
				w.Write(r.Key)
				w.WriteByte('\t')
			}
			w.Write(r.Value)
			w.WriteByte('\n')
			n++
			if max > 0 && n >= max {
				return nil
			}
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("cannot write output: %w", err)
		}
	}
}
