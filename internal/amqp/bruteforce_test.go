package amqp

import (
	"log/slog"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/auth"
)

// Failed logins are slowed per source (each refused after the store's growing failure
// delay, shared with Kafka and HTTP) and logged, without the password.
func TestLoginBruteForceSlowedAndLogged(t *testing.T) {
	users, err := auth.Open(auth.Options{})
	must(t, err)
	pw := "alice-pw"
	if _, err := users.PutUser("alice", &pw, nil); err != nil {
		t.Fatal(err)
	}
	var out lockedBuf
	_, url := startServer(t, Config{Auth: users, Logger: slog.New(slog.NewTextHandler(&out, nil))})
	const guess = "guess-Zq81"
	for range 2 {
		if _, err := amqp091.Dial(userURL(url, "alice", guess, "")); err == nil {
			t.Fatal("a wrong password logged in")
		}
	}
	if _, err := amqp091.DialConfig(userURL(url, "alice", guess, ""), amqp091.Config{SASL: []amqp091.Authentication{&amqp091.AMQPlainAuth{Username: "alice", Password: guess}}}); err == nil {
		t.Fatal("a wrong AMQPLAIN password logged in")
	}
	n, delay := users.Failures("127.0.0.1")
	if n != 3 || delay != auth.FailureDelayMin<<2 {
		t.Fatalf("after 3 failed logins: %d failures recorded, last delayed %v; want 3 and %v", n, delay, auth.FailureDelayMin<<2)
	}
	if out.count("AMQP authentication failed") == 0 || out.count("user=alice") == 0 {
		t.Errorf("failed logins not logged:\n%s", out.b.String())
	}
	if out.count(guess) != 0 {
		t.Errorf("the log holds the password:\n%s", out.b.String())
	}
}
