package broker

import (
	"errors"
	"fmt"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/stream"
)

// sharedStreams opens the catalog and the topic manager once for every front end that needs
// them (Kafka topics and AMQP stream queues are the same logs). Each caller gets a release
// function; the last release closes the manager.
func (b *Broker) sharedStreams() (*stream.Manager, func() error, error) {
	b.streamsMu.Lock()
	defer b.streamsMu.Unlock()
	if b.streams == nil {
		cat, err := catalog.Open(b.layout.Catalog())
		if err != nil {
			return nil, nil, err
		}
		streams, err := stream.Open(stream.Config{
			Layout:                  b.layout,
			SyncPolicy:              b.cfg.SyncPolicy,
			SyncInterval:            b.cfg.SyncInterval,
			Logger:                  b.log.With("component", "stream"),
			RetentionCheckInterval:  b.cfg.RetentionCheckInterval,
			CleanerThreads:          b.cfg.CleanerThreads,
			CleanerBackoff:          b.cfg.CleanerBackoff,
			CleanerIOBytesPerSecond: b.cfg.CleanerIOBytesPerSecond,
			FileCache:               b.files,
			SyncObserver:            b.metrics,
			TopicDeleted:            b.metrics.forgetTopic,
			NodeID:                  b.cfg.NodeID,
			JournalDir:              b.layout.KafkaJournal(),
			Journal:                 b.cfg.KafkaJournal,
		}, cat)
		if err != nil {
			return nil, nil, err
		}
		b.streams = streams
	}
	b.streamsRefs++
	released := false
	return b.streams, func() error {
		b.streamsMu.Lock()
		defer b.streamsMu.Unlock()
		if released {
			return errors.New("BUG: streams released twice")
		}
		released = true
		b.streamsRefs--
		if b.streamsRefs > 0 {
			return nil
		}
		s := b.streams
		b.streams = nil
		if err := s.Close(); err != nil {
			return fmt.Errorf("cannot close topics: %w", err)
		}
		return nil
	}, nil
}
