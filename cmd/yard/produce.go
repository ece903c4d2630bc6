package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
	var bootstrap, topic, key string
	cmd := &cobra.Command{
		Use:   "produce --topic T [--key K]",
		Short: "Produce stdin lines as records (acks=all, idempotent)",
		Args:  cobra.NoArgs,
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
			n, err := produceLines(ctx, cl, bufio.NewScanner(cmd.InOrStdin()), key, cmd.Flags().Changed("key"))
			fmt.Fprintf(cmd.ErrOrStderr(), "produced %d records to %s\n", n, topic)
			return err
		},
	}
	addBootstrapFlag(cmd.Flags(), &bootstrap)
	cmd.Flags().StringVar(&topic, "topic", "", "topic to produce to (required)")
	cmd.Flags().StringVar(&key, "key", "", "key of every record (default: no key)")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

// produceLines sends each line asynchronously and waits for every acknowledgement; it
// returns how many were acknowledged and the first failure.
func produceLines(ctx context.Context, cl *kgo.Client, sc *bufio.Scanner, key string, keyed bool) (int, error) {
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
