package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// TestServeSurvivesRunningOutOfFileDescriptors: under `ulimit -n 64`, 80 connections to each
// protocol port exhaust the descriptors, so accept fails with EMFILE. Both listeners used to
// stop accepting for good, silently, with their ports still bound. Now they log the error
// (rate-limited), back off, and serve again once the connections are gone.
func TestServeSurvivesRunningOutOfFileDescriptors(t *testing.T) {
	t.Parallel()
	// One partition of __consumer_offsets: its default 50 would hold most of the 64
	// descriptors (the segment file cache's floor is 64) before any connection.
	y := harness.Start(t, harness.WithNofileLimit(64), harness.WithArgs("--kafka-offsets-topic-partitions", "1"))
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, addr := range []string{y.KafkaAddr, y.AMQPAddr} {
		for range 80 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("cannot dial %s: %v", addr, err)
			}
			held = append(held, c)
		}
	}
	// Wait for the server to have run out (a condition, bounded so that a server that never
	// logs fails rather than hangs).
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(y.Log(), "too many open files") {
		if time.Now().After(deadline) {
			t.Fatal("no accept error logged with 160 connections under ulimit -n 64")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range held {
		c.Close()
	}
	held = nil

	if err := kafkaApiVersions(y.KafkaAddr); err != nil {
		t.Fatalf("Kafka listener does not serve after EMFILE: %v", err)
	}
	cfg := amqp091.Config{Dial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			c.SetDeadline(time.Now().Add(60 * time.Second))
		}
		return c, err
	}}
	c, err := amqp091.DialConfig(fmt.Sprintf("amqp://guest:guest@%s/", y.AMQPAddr), cfg)
	if err != nil {
		t.Fatalf("AMQP listener does not serve after EMFILE: %v", err)
	}
	c.Close()
	if n := strings.Count(y.Log(), "cannot accept connection"); n > 20 {
		t.Fatalf("%d accept-error lines: not rate-limited", n)
	}
}

// kafkaApiVersions sends ApiVersions v0 on a new connection and reads the answer's size.
func kafkaApiVersions(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	// size, api key 18, version 0, correlation id 1, client id "t"
	req := []byte{0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 1, 0, 1, 't'}
	if _, err := c.Write(req); err != nil {
		return err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	if corr := binary.BigEndian.Uint32(hdr[4:]); corr != 1 {
		return fmt.Errorf("correlation id %d, want 1", corr)
	}
	return nil
}
