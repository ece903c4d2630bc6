package kafka_test

import (
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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
