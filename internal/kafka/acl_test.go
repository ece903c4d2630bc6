package kafka

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/yardmq/yard/internal/auth/acl"
	"github.com/yardmq/yard/internal/tlsconf"
	"github.com/yardmq/yard/internal/tlsconf/tlsconftest"
)

// aclServer is a server with the ACL authorizer and an SSL listener requiring client
// certificates: each test client's principal is User:CN=<name>. CN=admin is a super user.
type aclServer struct {
	*testServer
	sslAddr string
	ca      *tlsconftest.CA
}

func startACLServer(t *testing.T) *aclServer {
	t.Helper()
	ca := tlsconftest.NewCA(t, "test CA")
	files := ca.WriteServer(t, t.TempDir(), "yard")
	store, err := tlsconf.Open(tlsconf.Config{CertFile: files.Cert, KeyFile: files.Key, ClientCAFile: files.ClientCA,
		ClientAuth: tlsconf.ClientAuthRequired})
	if err != nil {
		t.Fatal(err)
	}
	authz, err := acl.Open(filepath.Join(t.TempDir(), "kafka-acls.json"), []string{"CN=admin"})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *Config) { c.TLS, c.Authorizer = store, authz })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.ServeListener(ln, ListenerSpec{Name: "SSL", Protocol: SSL}, false)
	return &aclServer{testServer: ts, sslAddr: ln.Addr().String(), ca: ca}
}

// as is a client authenticated as User:CN=name.
func (s *aclServer) as(t *testing.T, name string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	_, _, cert := s.ca.Issue(t, pkix.Name{CommonName: name}, false)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.sslAddr),
		kgo.DialTLSConfig(&tls.Config{RootCAs: s.ca.Pool(), Certificates: []tls.Certificate{cert}})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestACLEnforcement(t *testing.T) {
	s := startACLServer(t)
	ctx := testCtx(t)
	must := mustResponse(t)
	admin := kadm.NewClient(s.as(t, "admin"))
	if _, err := admin.CreateTopics(ctx, 1, 1, nil, "t", "app-x", "secret"); err != nil {
		t.Fatal(err)
	}
	acls := kadm.NewACLs().Allow("User:CN=alice").Topics("t").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	pre := kadm.NewACLs().Allow("User:CN=alice").Topics("app-").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternPrefixed)
	denyRead := kadm.NewACLs().Deny("User:CN=alice").Topics("app-x").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	everyone := kadm.NewACLs().Allow("User:*").Groups("shared").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	for _, b := range []*kadm.ACLBuilder{acls, pre, denyRead, everyone} {
		res, err := admin.CreateACLs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create ACL: %v", r.Err)
			}
		}
	}

	alice := s.as(t, "alice")
	// Metadata for all topics lists only those alice may Describe (Read on t, Write on app-*).
	md := must(kmsg.NewPtrMetadataRequest().RequestWith(ctx, alice)).(*kmsg.MetadataResponse)
	var names []string
	for _, tp := range md.Topics {
		names = append(names, *tp.Topic)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"app-x", "t"}) {
		t.Fatalf("alice's metadata lists %v, want [app-x t]", names)
	}
	// A named topic alice may not Describe: TOPIC_AUTHORIZATION_FAILED.
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("secret")}}
	mreq.IncludeTopicAuthorizedOperations = true
	md = must(mreq.RequestWith(ctx, alice)).(*kmsg.MetadataResponse)
	if md.Topics[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("metadata of secret: %v", kerr.ErrorForCode(md.Topics[0].ErrorCode))
	}
	// The authorized-operations bitfield comes from the ACLs: Read and Describe on t.
	mreq.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}
	md = must(mreq.RequestWith(ctx, alice)).(*kmsg.MetadataResponse)
	if want := int32(1<<kmsg.ACLOperationRead | 1<<kmsg.ACLOperationDescribe); md.Topics[0].AuthorizedOperations != want {
		t.Fatalf("authorized operations on t: %b, want %b", md.Topics[0].AuthorizedOperations, want)
	}
	// Auto-creating a topic needs Create: alice is refused, nothing is created.
	mreq.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("app-new")}}
	mreq.AllowAutoTopicCreation = true
	md = must(mreq.RequestWith(ctx, alice)).(*kmsg.MetadataResponse)
	if md.Topics[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("auto-create by alice: %v", kerr.ErrorForCode(md.Topics[0].ErrorCode))
	}
	if _, ok := s.st.Topic("app-new"); ok {
		t.Fatal("a topic was auto-created for a principal without Create")
	}

	// Produce: Write on app-x (prefixed) allowed, on t (Read only) refused.
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "app-x", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce to app-x: %v", err)
	}
	preq := produceReq(9, "t", 0, makeBatch(-1, -1, 0, "v"))
	tt, _ := s.st.Topic("t")
	preq.Topics[0].TopicID = tt.ID // kgo sends its newest version, which names topics by ID
	pr := must(preq.RequestWith(ctx, alice)).(*kmsg.ProduceResponse)
	if c := pr.Topics[0].Partitions[0].ErrorCode; c != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("produce to t: %v", kerr.ErrorForCode(c))
	}
	// Fetch: Read on t allowed; app-x's Read is denied.
	freq := kmsg.NewPtrFetchRequest()
	freq.Version = 12
	freq.ReplicaID, freq.MaxBytes = -1, 1<<20
	for _, name := range []string{"t", "app-x"} {
		ft := kmsg.NewFetchRequestTopic()
		tp, _ := s.st.Topic(name)
		ft.Topic, ft.TopicID = name, tp.ID
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		freq.Topics = append(freq.Topics, ft)
	}
	fr := must(freq.RequestWith(ctx, alice)).(*kmsg.FetchResponse)
	appX, _ := s.st.Topic("app-x")
	for _, ft := range fr.Topics {
		want := int16(0)
		if ft.Topic == "app-x" || ft.TopicID == appX.ID {
			want = kerr.TopicAuthorizationFailed.Code
		}
		if c := ft.Partitions[0].ErrorCode; c != want {
			t.Fatalf("fetch %s: %v, want %v", ft.Topic, kerr.ErrorForCode(c), kerr.ErrorForCode(want))
		}
	}
	// Groups: no ACL on g (GROUP_AUTHORIZATION_FAILED); User:* may Read "shared" (this test
	// server has no group coordinator: COORDINATOR_NOT_AVAILABLE, past the authorization).
	ocr := kmsg.NewPtrOffsetCommitRequest()
	ocr.Group, ocr.Generation = "g", -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = "t"
	ot.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 0}}
	ocr.Topics = append(ocr.Topics, ot)
	// Straight to the broker (kgo would first ask FindCoordinator, refused as well).
	oc := must(alice.Broker(int(s.st.Node().ID())).RetriableRequest(ctx, ocr)).(*kmsg.OffsetCommitResponse)
	if c := oc.Topics[0].Partitions[0].ErrorCode; c != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("commit to g: %v", kerr.ErrorForCode(c))
	}
	fcg := kmsg.NewPtrFindCoordinatorRequest()
	fcg.CoordinatorKey, fcg.CoordinatorKeys = "g", []string{"g"}
	fcr := must(alice.Broker(int(s.st.Node().ID())).RetriableRequest(ctx, fcg)).(*kmsg.FindCoordinatorResponse)
	code := fcr.ErrorCode
	if len(fcr.Coordinators) == 1 {
		code = fcr.Coordinators[0].ErrorCode
	}
	if code != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("find coordinator of g: %v", kerr.ErrorForCode(code))
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "shared", []string{"shared"}
	if r := must(alice.Broker(int(s.st.Node().ID())).RetriableRequest(ctx, fc)).(*kmsg.FindCoordinatorResponse); len(r.Coordinators) != 1 || r.Coordinators[0].ErrorCode == kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("find coordinator of shared: %+v", r)
	}
	// Cluster operations: CLUSTER_AUTHORIZATION_FAILED.
	if r := must(kmsg.NewPtrDescribeACLsRequest().RequestWith(ctx, alice)).(*kmsg.DescribeACLsResponse); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("describe ACLs by alice: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := must(s.as(t, "bob").Broker(int(s.st.Node().ID())).RetriableRequest(ctx, kmsg.NewPtrInitProducerIDRequest())).(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("idempotent producer without any Write: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID = kmsg.StringPtr("tx")
	if r := must(alice.Broker(int(s.st.Node().ID())).RetriableRequest(ctx, ip)).(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional producer: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// CreateTopics without Create: TOPIC_AUTHORIZATION_FAILED.
	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "new", 1, 1
	ct.Topics = append(ct.Topics, ctt)
	if r := must(ct.RequestWith(ctx, alice)).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("create topic by alice: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}

	// Describe with a MATCH filter and delete: the admin sees and removes alice's ACLs.
	described, err := admin.DescribeACLs(ctx, kadm.NewACLs().Topics("app-x").ResourcePatternType(kadm.ACLPatternMatch).
		Operations(kadm.OpAny).Allow().Deny().AllowHosts().DenyHosts())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(described[0].Described); described[0].Err != nil || n != 2 { // the prefix app- and the deny on app-x
		t.Fatalf("describe MATCH app-x: %d %v", n, described[0].Err)
	}
	deleted, err := admin.DeleteACLs(ctx, kadm.NewACLs().Deny("User:CN=alice").Topics("app-x").
		ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpRead).DenyHosts())
	if err != nil || len(deleted) != 1 || len(deleted[0].Deleted) != 1 {
		t.Fatalf("delete the deny: %+v %v", deleted, err)
	}
	fr = must(freq.RequestWith(ctx, alice)).(*kmsg.FetchResponse)
	for _, ft := range fr.Topics {
		if (ft.Topic == "app-x" || ft.TopicID == appX.ID) && ft.Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
			// Write does not imply Read: still refused, now for want of an ALLOW.
			t.Fatalf("fetch app-x after the deny is gone: %v", kerr.ErrorForCode(ft.Partitions[0].ErrorCode))
		}
	}
}

func TestACLsPlaintextAnonymous(t *testing.T) {
	// On a PLAINTEXT listener the principal is User:ANONYMOUS: denied without ACLs.
	s := startACLServer(t)
	ctx := testCtx(t)
	must := mustResponse(t)
	cl := s.client(t)
	md := must(kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)).(*kmsg.MetadataResponse)
	if len(md.Topics) != 0 {
		t.Fatalf("anonymous metadata: %d topics", len(md.Topics))
	}
	if r := must(kmsg.NewPtrDescribeACLsRequest().RequestWith(ctx, cl)).(*kmsg.DescribeACLsResponse); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("anonymous DescribeAcls: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// TestACLsWithSASLPrincipals: principals from SASL (User:alice), a super user managing ACLs
// with kadm, allow/deny/prefixed, and Metadata filtering for the SASL user.
func TestACLsWithSASLPrincipals(t *testing.T) {
	authz, err := acl.Open(filepath.Join(t.TempDir(), "kafka-acls.json"), []string{"root"})
	if err != nil {
		t.Fatal(err)
	}
	ts, users := saslServer(t, func(c *Config) { c.Authorizer = authz })
	pw := "root-secret"
	if _, err := users.PutUser("root", &pw, nil); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	root := kadm.NewClient(ts.client(t, kgo.SASL(plain.Auth{User: "root", Pass: pw}.AsMechanism())))
	if _, err := root.CreateTopics(ctx, 1, 1, nil, "orders", "orders-eu", "payroll"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("orders").
		ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpRead, kadm.OpWrite)); err != nil {
		t.Fatal(err)
	}
	if _, err := root.CreateACLs(ctx, kadm.NewACLs().Deny("User:alice").Topics("orders-eu").
		ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpWrite)); err != nil {
		t.Fatal(err)
	}
	alice := ts.client(t, kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()), kgo.RequestRetries(0))
	adm := kadm.NewClient(alice)
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := md.Topics.Names(); !slices.Equal(names, []string{"orders", "orders-eu"}) {
		t.Fatalf("alice sees %v", names)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("1")}).FirstErr(); err != nil {
		t.Fatalf("produce to orders: %v", err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "orders-eu", Value: []byte("1")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to orders-eu (denied): %v", err)
	}
	// Changing SCRAM credentials needs Alter on the cluster: alice cannot change root's.
	alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = "root", 1, 4096, []byte("salt"), make([]byte, 32)
	alter.Upsertions = append(alter.Upsertions, up)
	ar, err := alter.RequestWith(ctx, alice)
	if err != nil || len(ar.Results) != 1 || ar.Results[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("alice altering root's credentials: %v %+v", err, ar)
	}
	if dr, err := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest().RequestWith(ctx, alice); err != nil || dr.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("alice describing credentials: %v %+v", err, dr)
	}
	res, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().Deny().AllowHosts().DenyHosts().
		Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil || len(res) == 0 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice describing ACLs: %v %+v", err, res)
	}
}

// mustResponse is a check for a request's answer: it fails t on an error, else returns the
// response, as in must(req.RequestWith(ctx, cl)).
func mustResponse(t *testing.T) func(kmsg.Response, error) kmsg.Response {
	return func(r kmsg.Response, err error) kmsg.Response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}
