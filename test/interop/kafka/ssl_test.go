package kafka_test

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/tlsconf/tlsconftest"
	"github.com/yardmq/yard/test/harness"
)

// TestKcatSSL: kcat (librdkafka, OpenSSL) produces and consumes over yard's SSL listener with a
// client certificate (--tls-client-auth required); Metadata sends it back to the SSL port.
func TestKcatSSL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlsconftest.NewCA(t, "interop CA")
	files := ca.WriteServer(t, dir, "yard")
	certPEM, keyPEM, _ := ca.Issue(t, pkix.Name{CommonName: "kcat"}, false)
	clientCert, clientKey := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	if err := os.WriteFile(clientCert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(clientKey, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	y := harness.Start(t, harness.WithKafkaListener("SSL"), harness.WithArgs(
		"--tls-cert-file", files.Cert, "--tls-key-file", files.Key,
		"--tls-client-ca-file", files.ClientCA, "--tls-client-auth", "required"))
	ssl := y.KafkaListeners["SSL"]
	sslArgs := []string{"-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + files.ClientCA,
		"-X", "ssl.certificate.location=" + clientCert, "-X", "ssl.key.location=" + clientKey}
	const count = 200
	var in strings.Builder
	for i := 0; i < count; i++ {
		fmt.Fprintf(&in, "PKG-%d\t{\"seq\":%d,\"status\":\"SCANNED\",\"client\":\"kcat\"}\n", 40000+i%10, i)
	}
	run(t, in.String(), tools.kcat, append([]string{"-b", ssl, "-t", "kcat-ssl", "-P", "-K", "\t", "-z", "lz4",
		"-X", "acks=all", "-X", "enable.idempotence=true"}, sslArgs...)...)
	recs := run(t, "", tools.kcat, append([]string{"-b", ssl, "-t", "kcat-ssl", "-C", "-o", "beginning",
		"-c", strconv.Itoa(count), "-q", "-f", "%p\t%o\t%k\t%s\n"}, sslArgs...)...)
	checkRecords(t, recs, count, "kcat")
}

// TestSIGHUPReloadsCertificate: after the certificate files are replaced and yard gets SIGHUP,
// new TLS handshakes see the new certificate while a connection made before keeps working.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlsconftest.NewCA(t, "interop CA")
	files := ca.WriteServer(t, dir, "yard-old")
	y := harness.Start(t, harness.WithKafkaListener("SSL"), harness.WithArgs("--tls-cert-file", files.Cert, "--tls-key-file", files.Key))
	ssl := y.KafkaListeners["SSL"]
	served := func() string {
		c, err := tls.Dial("tcp", ssl, &tls.Config{RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(ssl), kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool()}), kgo.DefaultProduceTopic("hup"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if cn := served(); cn != "yard-old" {
		t.Fatalf("served %q", cn)
	}
	ca.WriteServer(t, dir, "yard-new")
	y.Hangup()
	deadline := time.Now().Add(30 * time.Second)
	for served() != "yard-new" {
		if time.Now().After(deadline) {
			t.Fatal("the new certificate is not served 30 s after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("the connection made before the reload: %v", err)
	}
}
