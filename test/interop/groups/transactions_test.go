package groups_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// kafkaTransactions runs Kafka's kafka-transactions tool.
func kafkaTransactions(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := kafkaTool(t, "kafka-transactions", "org.apache.kafka.tools.TransactionsCommand", args...)
	return out
}

// TestKafkaTransactionsTool: kafka-transactions list and describe show a franz-go
// transactional producer's open transaction, then its completion.
func TestKafkaTransactionsTool(t *testing.T) {
	y := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(client(t, y.KafkaAddr))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "tx-tool"); err != nil {
		t.Fatal(err)
	}
	p := client(t, y.KafkaAddr, kgo.TransactionalID("tool-txn"), kgo.DefaultProduceTopic("tx-tool"))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	list := kafkaTransactions(t, "--bootstrap-server", y.KafkaAddr, "list")
	if !strings.Contains(list, "tool-txn") || !strings.Contains(list, "Ongoing") {
		t.Errorf("kafka-transactions list:\n%s", list)
	}
	desc := kafkaTransactions(t, "--bootstrap-server", y.KafkaAddr, "describe", "--transactional-id", "tool-txn")
	if !strings.Contains(desc, "tool-txn") || !strings.Contains(desc, "Ongoing") || !strings.Contains(desc, "tx-tool-0") {
		t.Errorf("kafka-transactions describe:\n%s", desc)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	desc = kafkaTransactions(t, "--bootstrap-server", y.KafkaAddr, "describe", "--transactional-id", "tool-txn")
	if !strings.Contains(desc, "CompleteCommit") {
		t.Errorf("kafka-transactions describe after commit:\n%s", desc)
	}
}
