package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxProduceLineBytes bounds one stdin line (one record value).
const maxProduceLineBytes = 16 << 20

// newProduceCmd is `yard produce --topic T [--key K]`: every stdin line becomes one record.
// Keyed records go to the partition Kafka's Java client would choose (murmur2 of the key);
// unkeyed ones are spread over partitions batch by batch (the sticky partitioner).
func newProduceCmd() *cobra.Command {
	var bootstrap, topic, key, file string
	cmd := &cobra.Command{
		Use:   "produce --topic T [--key K] [--file F]",
		Short: "Produce stdin lines as records (acks=all, idempotent)",
		Long: "Produce every line of stdin (or --file) as one record. Reading a file of 1 MiB or more\n" +
			"with stderr on a terminal shows a progress bar.",
		Example: "  echo hello | yard produce --topic events\n  yard produce --topic events --file big.ndjson\n  yard produce --topic events --key k1 < lines.txt",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newKafkaClient(bootstrap,
				kgo.DefaultProduceTopic(topic),
				kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
				// As Kafka's console producer: an unknown topic is created if the broker
				// auto-creates topics, and is an error (not an endless wait) otherwise.
				kgo.AllowAutoTopicCreation(),
			)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := interruptible(cmd)
			defer cancel()
			in := cmd.InOrStdin()
			if file != "" {
				f, err := os.Open(file)
				if err != nil {
					return fmt.Errorf("cannot read records: %w", err)
				}
				defer f.Close()
				in = f
			}
			var onRecord func()
			if p := newProgress(in, cmd.ErrOrStderr()); p != nil {
				in, onRecord = p, p.record
				defer p.finish()
			}
			n, err := produceLines(ctx, cl, bufio.NewScanner(in), key, cmd.Flags().Changed("key"), onRecord)
			fmt.Fprintf(cmd.ErrOrStderr(), "produced %d records to %s\n", n, topic)
			return err
		},
	}
	addBootstrapFlag(cmd.Flags(), &bootstrap)
	cmd.Flags().StringVar(&topic, "topic", "", "topic to produce to (required)")
	cmd.Flags().StringVar(&key, "key", "", "key of every record (default: no key)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "read records from this file instead of stdin")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

// produceLines sends each line asynchronously and waits for every acknowledgement; it
// returns how many were acknowledged and the first failure.
// onRecord, if not nil, is called after each record is handed to the client (progress).
func produceLines(ctx context.Context, cl *kgo.Client, sc *bufio.Scanner, key string, keyed bool, onRecord func()) (int, error) {
	sc.Buffer(make([]byte, 64<<10), maxProduceLineBytes)
	var mu sync.Mutex
	var firstErr error
	acked := 0
	for sc.Scan() {
		r := &kgo.Record{Value: append([]byte(nil), sc.Bytes()...)}
		if keyed {
			r.Key = []byte(key)
		}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("cannot produce to %s: %w", r.Topic, err)
			}
			if err == nil {
				acked++
			}
		})
		if onRecord != nil {
			onRecord()
		}
	}
	if err := cl.Flush(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return acked, err
	}
	mu.Lock()
	defer mu.Unlock()
	if err := sc.Err(); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("cannot read stdin: %w", err)
	}
	return acked, firstErr
}
