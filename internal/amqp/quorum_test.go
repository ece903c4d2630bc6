package amqp

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TestQuorumQueueDeclare: what a quorum queue cannot be is refused with RabbitMQ's 406s; a
// redeclaration without the defaulted x-delivery-limit is equivalent; another type is not.
func TestQuorumQueueDeclare(t *testing.T) {
	_, url := startServer(t, Config{})
	c := dial(t, url)
	quorum := amqp091.Table{"x-queue-type": "quorum"}
	for _, tc := range []struct {
		name                         string
		durable, autoDelete, exclusv bool
		args                         amqp091.Table
		text                         string
	}{
		{"q1", false, false, false, quorum, "PRECONDITION_FAILED - invalid property 'non-durable' for queue 'q1' in vhost '/'"},
		{"q2", true, false, true, quorum, "PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue 'q2' in vhost '/'"},
		{"q3", true, true, false, quorum, "PRECONDITION_FAILED - invalid property 'auto-delete' for queue 'q3' in vhost '/'"},
		{"q4", true, false, false, amqp091.Table{"x-queue-type": "quorum", "x-max-priority": int32(5)},
			"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q4' in vhost '/' of queue type quorum"},
		{"q5", true, false, false, amqp091.Table{"x-queue-type": "quorum", "x-overflow": "reject-publish-dlx"},
			"PRECONDITION_FAILED - invalid arg 'x-overflow' for queue 'q5' in vhost '/' of queue type quorum: reject-publish-dlx is not supported"},
		{"q6", true, false, false, amqp091.Table{"x-queue-type": "fancy"},
			`PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q6' in vhost '/': "unsupported queue type 'fancy'"`},
	} {
		ch := openCh(t, c)
		_, err := ch.QueueDeclare(tc.name, tc.durable, tc.autoDelete, tc.exclusv, false, tc.args)
		wantCode(t, err, 406, tc.text)
	}
	ch := openCh(t, c)
	if _, err := ch.QueueDeclare("work", true, false, false, false, quorum); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("work", true, false, false, false, quorum); err != nil {
		t.Fatalf("redeclaring the same quorum queue: %v", err)
	}
	_, err := ch.QueueDeclare("work", true, false, false, false, nil)
	wantCode(t, err, 406, "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'work' in vhost '/': received none but current is the value 'quorum' of type 'longstr'")
	ch = openCh(t, c)
	_, err = ch.QueueDeclare("work", true, false, false, false, amqp091.Table{"x-queue-type": "classic"})
	wantCode(t, err, 406, "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'work' in vhost '/': received the value 'classic' of type 'longstr' but current is the value 'quorum' of type 'longstr'")
	// A classic queue is the same whether its type is spelt out or not.
	ch = openCh(t, c)
	if _, err := ch.QueueDeclare("plain", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("plain", true, false, false, false, amqp091.Table{"x-queue-type": "classic"}); err != nil {
		t.Fatalf("redeclaring a classic queue with x-queue-type=classic: %v", err)
	}
}

// TestQuorumQueueDefaultDeliveryLimit: a poison message on a quorum queue without an
// x-delivery-limit is delivered 21 times (once plus 20 redeliveries, each saying how often it
// was delivered before in x-delivery-count) and then dead-lettered, not requeued forever.
func TestQuorumQueueDefaultDeliveryLimit(t *testing.T) {
	_, url := startServer(t, Config{})
	ch := openCh(t, dial(t, url))
	must(t, ch.ExchangeDeclare("dlx", "fanout", true, false, false, false, nil))
	if _, err := ch.QueueDeclare("poison-dlq", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	must(t, ch.QueueBind("poison-dlq", "", "dlx", false, nil))
	if _, err := ch.QueueDeclare("jobs", true, false, false, false, amqp091.Table{"x-queue-type": "quorum", "x-dead-letter-exchange": "dlx"}); err != nil {
		t.Fatal(err)
	}
	must(t, ch.Publish("", "jobs", false, false, amqp091.Publishing{Body: []byte("poison")}))
	deliveries, err := ch.Consume("jobs", "", false, false, false, false, nil)
	must(t, err)
	for i := 0; i <= 20; i++ {
		d := recv(t, deliveries)
		if got, _ := d.Headers["x-delivery-count"].(int64); int(got) != i {
			t.Fatalf("delivery %d: x-delivery-count %v, want %d", i+1, d.Headers["x-delivery-count"], i)
		}
		must(t, d.Nack(false, true))
	}
	dl, err := ch.Consume("poison-dlq", "", true, false, false, false, nil)
	must(t, err)
	d := recv(t, dl)
	deaths, _ := d.Headers["x-death"].([]any)
	if string(d.Body) != "poison" || len(deaths) != 1 || deaths[0].(amqp091.Table)["reason"] != "delivery_limit" {
		t.Fatalf("dead letter: %q %v", d.Body, d.Headers)
	}
	if q, err := ch.QueueDeclarePassive("jobs", true, false, false, false, amqp091.Table{"x-queue-type": "quorum", "x-dead-letter-exchange": "dlx"}); err != nil || q.Messages != 0 {
		t.Fatalf("jobs after the dead-lettering: %+v %v", q, err)
	}
}
