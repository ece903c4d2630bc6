package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// writeToken and readToken speak SaslHandshake v0's bare size-prefixed tokens.
func (r *rawConn) writeToken(tok []byte) {
	r.t.Helper()
	if _, err := r.c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) readToken() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(r.c, b)
	return b, err
}

func handshakeV0(t *testing.T, r *rawConn, mechanism string) *kmsg.SASLHandshakeResponse {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 0, mechanism
	return r.roundTrip(hs).(*kmsg.SASLHandshakeResponse)
}

// SaslHandshake v0 (clients before Kafka 1.0): the tokens follow as bare frames.
func TestSASLHandshakeV0(t *testing.T) {
	ts, _ := saslServer(t, nil)

	t.Run("advertised", func(t *testing.T) {
		resp := ts.raw(t).roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
		for _, k := range resp.ApiKeys {
			if k.ApiKey == int16(kmsg.SASLHandshake) && (k.MinVersion != 0 || k.MaxVersion != 1) {
				t.Fatalf("SaslHandshake versions %d-%d, want 0-1", k.MinVersion, k.MaxVersion)
			}
		}
	})

	t.Run("PLAIN", func(t *testing.T) {
		r := ts.raw(t)
		if resp := handshakeV0(t, r, "PLAIN"); resp.ErrorCode != 0 || len(resp.SupportedMechanisms) != 3 {
			t.Fatalf("SaslHandshake v0: %+v", resp)
		}
		r.writeToken([]byte("\x00alice\x00alice-secret"))
		if tok, err := r.readToken(); err != nil || len(tok) != 0 {
			t.Fatalf("PLAIN's answer: %q %v, want an empty token", tok, err)
		}
		if resp := r.roundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(resp.Brokers) != 1 {
			t.Fatalf("Metadata after v0 authentication: %+v", resp)
		}
	})

	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			r := ts.raw(t)
			if resp := handshakeV0(t, r, mech); resp.ErrorCode != 0 {
				t.Fatalf("SaslHandshake v0: %v", resp.ErrorCode)
			}
			a := scram.Auth{User: "alice", Pass: "alice-secret"}
			m := a.AsSha256Mechanism()
			if mech == "SCRAM-SHA-512" {
				m = a.AsSha512Mechanism()
			}
			sess, first, err := m.Authenticate(context.Background(), ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			tok := first
			for done := false; !done; {
				r.writeToken(tok)
				challenge, err := r.readToken()
				if err != nil {
					t.Fatalf("SCRAM over v0: %v", err)
				}
				if done, tok, err = sess.Challenge(challenge); err != nil {
					t.Fatalf("server's SCRAM message %q: %v", challenge, err)
				}
			}
			r.roundTrip(kmsg.NewPtrMetadataRequest())
		})
	}

	// A wrong password closes the connection without an answer, as Kafka does for v0.
	for _, tok := range [][]byte{[]byte("\x00alice\x00wrong"), []byte("garbage"), []byte("\x00mallory\x00alice-secret")} {
		t.Run("refused", func(t *testing.T) {
			r := ts.raw(t)
			handshakeV0(t, r, "PLAIN")
			r.writeToken(tok)
			if got, err := r.readToken(); !errors.Is(err, io.EOF) {
				t.Fatalf("after a refused v0 token %q: %q %v, want the connection closed", tok, got, err)
			}
		})
	}

	t.Run("unsupported mechanism", func(t *testing.T) {
		if resp := handshakeV0(t, ts.raw(t), "GSSAPI"); resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code {
			t.Fatalf("GSSAPI: %v", resp.ErrorCode)
		}
	})
}
