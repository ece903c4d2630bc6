package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/tlsconf"
	"github.com/yardmq/yard/internal/tlsconf/tlsconftest"
)

// startTLSBroker runs a broker with a PLAINTEXT and an SSL Kafka listener, AMQP and AMQPS,
// HTTPS, all with certificates of ca, client certificates requested.
func startTLSBroker(t *testing.T, ca *tlsconftest.CA, clientAuth tlsconf.ClientAuth) (*Broker, tlsconftest.Files) {
	t.Helper()
	dir := t.TempDir()
	files := ca.WriteServer(t, dir, "yard-1")
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaListen = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"
	cfg.AMQPListen = "127.0.0.1:0"
	cfg.AMQPSListen = "127.0.0.1:0"
	cfg.HTTPListen = ""
	cfg.HTTPSListen = "127.0.0.1:0"
	cfg.SyncPolicy = 0
	cfg.TLS = tlsconf.Config{CertFile: files.Cert, KeyFile: files.Key, ClientCAFile: files.ClientCA, ClientAuth: clientAuth}
	cfg.AMQP.DefaultUser, cfg.AMQP.DefaultPass = "alice", "x"
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	return b, files
}

func TestKafkaSSLListener(t *testing.T) {
	ca := tlsconftest.NewCA(t, "test CA")
	b, _ := startTLSBroker(t, ca, tlsconf.ClientAuthRequested)
	ssl := b.Addr("kafka:SSL").String()
	_, _, alice := ca.Issue(t, pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}}, false)
	cl, err := kgo.NewClient(kgo.SeedBrokers(ssl),
		kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{alice}}),
		kgo.DefaultProduceTopic("t"), kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Metadata sends the client back to the SSL listener: a produce through it works only
	// if the advertised address is the SSL one.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("over tls")}).FirstErr(); err != nil {
		t.Fatalf("produce over SSL: %v", err)
	}
	fs := cl.PollFetches(ctx)
	if errs := fs.Errors(); len(errs) > 0 {
		t.Fatalf("fetch: %v", errs)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "over tls" {
		t.Fatalf("records: %v", recs)
	}
	// The mTLS principal is the certificate's full subject DN, as Kafka's default.
	found := false
	for _, c := range b.Connections().List() {
		if c.Protocol == "kafka" && c.Listener == "SSL" {
			if c.User != "CN=alice,OU=eng" {
				t.Fatalf("principal %q, want CN=alice,OU=eng", c.User)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("no connection on the SSL listener in the registry")
	}

	// A client that does not trust the server's CA is refused at the handshake.
	other := tlsconftest.NewCA(t, "other CA")
	bad, err := tls.Dial("tcp", ssl, &tls.Config{RootCAs: other.Pool()})
	if err == nil {
		bad.Close()
		t.Fatal("handshake with a client trusting another CA succeeded")
	}
	// TLS 1.1 is refused.
	old, err := tls.Dial("tcp", ssl, &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11})
	if err == nil {
		old.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

func TestClientCertificateRequired(t *testing.T) {
	ca := tlsconftest.NewCA(t, "test CA")
	b, _ := startTLSBroker(t, ca, tlsconf.ClientAuthRequired)
	ssl := b.Addr("kafka:SSL").String()
	// Without a certificate: refused (TLS 1.3 reports it on the first read).
	c, err := tls.Dial("tcp", ssl, &tls.Config{RootCAs: ca.Pool()})
	if err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate was served")
	}
	// A certificate from another CA: refused.
	other := tlsconftest.NewCA(t, "other CA")
	_, _, mallory := other.Issue(t, pkix.Name{CommonName: "mallory"}, false)
	c, err = tls.Dial("tcp", ssl, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{mallory}})
	if err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("a client with a certificate of an unknown CA was served")
	}
}

func TestAMQPSAndExternal(t *testing.T) {
	ca := tlsconftest.NewCA(t, "test CA")
	b, _ := startTLSBroker(t, ca, tlsconf.ClientAuthRequested)
	addr := b.Addr("amqp:tls").String()
	// PLAIN over TLS.
	conn, err := amqp.DialTLS("amqps://alice:x@"+addr+"/", &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("AMQPS with PLAIN: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("q", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	// EXTERNAL: the certificate's CN is the user.
	_, _, alice := ca.Issue(t, pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}}, false)
	conn, err = amqp.DialTLS_ExternalAuth("amqps://"+addr+"/", &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{alice}})
	if err != nil {
		t.Fatalf("EXTERNAL login: %v", err)
	}
	found := false
	for _, c := range b.Connections().List() {
		if c.Protocol == "amqp" && c.User == "alice" {
			found = true
		}
	}
	conn.Close()
	if !found {
		t.Fatal("EXTERNAL connection not registered as user alice")
	}
	// EXTERNAL with a CN the user store does not know: refused.
	_, _, bob := ca.Issue(t, pkix.Name{CommonName: "bob"}, false)
	if conn, err := amqp.DialTLS_ExternalAuth("amqps://"+addr+"/", &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{bob}}); err == nil {
		conn.Close()
		t.Fatal("EXTERNAL login of an unknown user succeeded")
	}
	// EXTERNAL without a certificate: not offered, so refused.
	if conn, err := amqp.DialTLS_ExternalAuth("amqps://"+addr+"/", &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}); err == nil {
		conn.Close()
		t.Fatal("EXTERNAL login without a certificate succeeded")
	}
	// Plain AMQP does not offer EXTERNAL either.
	if conn, err := amqp.DialConfig("amqp://"+b.Addr("amqp").String()+"/", amqp.Config{SASL: []amqp.Authentication{&amqp.ExternalAuth{}}}); err == nil {
		conn.Close()
		t.Fatal("EXTERNAL login on plain AMQP succeeded")
	}
}

func TestHTTPS(t *testing.T) {
	ca := tlsconftest.NewCA(t, "test CA")
	b, _ := startTLSBroker(t, ca, tlsconf.ClientAuthNone)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	resp, err := cl.Get("https://" + b.Addr("http:tls").String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("healthz over https: %d %q", resp.StatusCode, body)
	}
}

func TestTLSReload(t *testing.T) {
	ca := tlsconftest.NewCA(t, "test CA")
	b, _ := startTLSBroker(t, ca, tlsconf.ClientAuthNone)
	ssl := b.Addr("kafka:SSL").String()
	cl, err := kgo.NewClient(kgo.SeedBrokers(ssl), kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool()}),
		kgo.DefaultProduceTopic("t"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	served := func() string {
		c, err := tls.Dial("tcp", ssl, &tls.Config{RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := served(); cn != "yard-1" {
		t.Fatalf("served %q before reload", cn)
	}
	// Rotate: new files, reload (what SIGHUP does).
	ca.WriteServer(t, strings.TrimSuffix(b.cfg.TLS.CertFile, "/server.pem"), "yard-2")
	if err := b.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if cn := served(); cn != "yard-2" {
		t.Fatalf("served %q after reload, want the new certificate", cn)
	}
	// The connection made before the reload still works.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce on the old connection after reload: %v", err)
	}
	// A broken reload keeps the current certificate.
	if err := writeFile(b.cfg.TLS.KeyFile, "garbage"); err != nil {
		t.Fatal(err)
	}
	if err := b.ReloadTLS(); err == nil {
		t.Fatal("reload of a garbage key succeeded")
	}
	if cn := served(); cn != "yard-2" {
		t.Fatalf("served %q after a failed reload", cn)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
