package amqp_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/tlsconf/tlsconftest"
	"github.com/yardmq/yard/test/harness"
)

// tlsYard serves AMQP over TLS (--amqps-listen) with a certificate from a test CA, client
// certificates requested (verified if given: EXTERNAL), and writes a client certificate
// for guest. It returns the amqps port and the files' paths.
func tlsYard(t *testing.T) (port string, ca, cert, key, keyPKCS8 string) {
	t.Helper()
	dir := t.TempDir()
	authority := tlsconftest.NewCA(t, "interop CA")
	files := authority.WriteServer(t, dir, "yard")
	certPEM, keyPEM, pair := authority.Issue(t, pkix.Name{CommonName: "guest"}, false)
	der, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, keyPKCS8 = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"), filepath.Join(dir, "client-pkcs8.key")
	for path, data := range map[string][]byte{cert: certPEM, key: keyPEM, keyPKCS8: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	harness.Start(t, harness.WithArgs("--amqps-listen", addr,
		"--tls-cert-file", files.Cert, "--tls-key-file", files.Key,
		"--tls-client-ca-file", files.ClientCA, "--tls-client-auth", "requested"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the amqps listener %s does not accept: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, port = hostPort(addr)
	return port, files.ClientCA, cert, key, keyPKCS8
}

// TestPikaTLS: pika over TLS (the test's CA only, the server's name checked) with the right
// and a wrong password, and EXTERNAL with a client certificate (mTLS).
func TestPikaTLS(t *testing.T) {
	t.Parallel()
	port, ca, cert, key, _ := tlsYard(t)
	runChecks(t, []string{"tls-publish-get", "tls-wrong-password", "external", "external-needs-cert"},
		tools["PYTHON"], filepath.Join(here, "python", "tls.py"), "127.0.0.1", port, ca, "guest", "guest", cert, key)
}

// TestJavaAMQPTLS: the RabbitMQ Java client over TLS (the test's CA only, hostname
// verification on) with the right and a wrong password, and EXTERNAL with a client
// certificate.
func TestJavaAMQPTLS(t *testing.T) {
	t.Parallel()
	port, ca, cert, _, keyPKCS8 := tlsYard(t)
	runChecks(t, []string{"tls-publish-get", "tls-wrong-password", "external"},
		"java", "-cp", tools["JAVA_CP"], "yard.interop.Tls", "127.0.0.1", port, ca, "guest", "guest", cert, keyPKCS8)
}
