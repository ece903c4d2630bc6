package amqp_test

import (
	"errors"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// TestServeFlagsAndShutdown checks the `yard serve --amqp-*` flags reach the front end and
// that SIGTERM closes client connections with 320 CONNECTION_FORCED.
func TestServeFlagsAndShutdown(t *testing.T) {
	y := harness.Start(t, harness.WithArgs("--amqp-default-user", "alice", "--amqp-default-pass", "pw",
		"--amqp-frame-max", "65536", "--amqp-heartbeat", "5s"))
	_, err := amqp091.Dial("amqp://guest:guest@" + y.AMQPAddr + "/")
	var ae *amqp091.Error
	if !errors.As(err, &ae) || ae.Code != 403 {
		t.Fatalf("guest should be refused when the default user is alice: %v", err)
	}
	c, err := amqp091.DialConfig("amqp://alice:pw@"+y.AMQPAddr+"/", amqp091.Config{Heartbeat: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if c.Config.FrameSize != 65536 || c.Config.Heartbeat != 5*time.Second {
		t.Fatalf("negotiated frame_max %d heartbeat %s", c.Config.FrameSize, c.Config.Heartbeat)
	}
	closed := c.NotifyClose(make(chan *amqp091.Error, 1))
	y.Stop()
	select {
	case e := <-closed:
		if e == nil || e.Code != 320 {
			t.Fatalf("close on shutdown: %v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no connection.close on shutdown")
	}
}
