package kafka

// Compatibility defects found by Kafka client libraries' own test suites: authorized
// operations, FindCoordinator for transactions, APIs answered instead of dropped, and
// auto-creation answered as Kafka answers it.

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's AclOperation codes and, per resource type, the operations it defines
// (AclEntry.supportedOperations), written out independently of the code under test.
const (
	aclRead, aclWrite, aclCreate, aclDelete, aclAlter, aclDescribe            = 3, 4, 5, 6, 7, 8
	aclClusterAction, aclDescribeConfigs, aclAlterConfigs, aclIdempotentWrite = 9, 10, 11, 12
)

func bitfield(ops ...int) int32 {
	var b int32
	for _, op := range ops {
		b |= 1 << op
	}
	return b
}

var (
	wantTopicOps   = bitfield(aclRead, aclWrite, aclCreate, aclDescribe, aclDelete, aclAlter, aclDescribeConfigs, aclAlterConfigs)
	wantGroupOps   = bitfield(aclRead, aclDescribe, aclDelete, aclDescribeConfigs, aclAlterConfigs)
	wantClusterOps = bitfield(aclCreate, aclClusterAction, aclDescribeConfigs, aclAlterConfigs, aclIdempotentWrite, aclAlter, aclDescribe)
)

// TestAuthorizedOperations: with include-authorized-operations set, Metadata (topic, and
// cluster on v8-10), DescribeCluster, DescribeGroups, ConsumerGroupDescribe and
// DescribeTopicPartitions report every operation Kafka defines for the resource type, as Kafka
// does without an authorizer; without it they keep INT32_MIN. librdkafka's DescribeTopics and
// DescribeCluster fail on INT32_MIN when they asked.
func TestAuthorizedOperations(t *testing.T) {
	t.Parallel()
	if wantTopicOps != 3576 || wantGroupOps != 3400 || wantClusterOps != 8096 {
		t.Fatalf("BUG in test: bitfields %d %d %d", wantTopicOps, wantGroupOps, wantClusterOps)
	}
	ts, _ := startGroupServer(t)
	ctx := testCtx(t)
	cl := ts.client(t)
	if _, err := ts.admin(t).CreateTopics(ctx, 1, 1, nil, "ops"); err != nil {
		t.Fatal(err)
	}

	r := ts.raw(t) // exact versions: a kgo client raises them to the newest both sides know
	for _, v := range []int16{8, 10, 12} {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("ops")
		req.Topics = append(req.Topics, mt)
		req.IncludeTopicAuthorizedOperations = true
		req.IncludeClusterAuthorizedOperations = v <= 10
		resp := r.roundTrip(req).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].AuthorizedOperations != wantTopicOps {
			t.Errorf("Metadata v%d topic authorized operations: %+v, want %d", v, resp.Topics, wantTopicOps)
		}
		if v <= 10 && resp.AuthorizedOperations != wantClusterOps {
			t.Errorf("Metadata v%d cluster authorized operations %d, want %d", v, resp.AuthorizedOperations, wantClusterOps)
		}
		req.IncludeTopicAuthorizedOperations, req.IncludeClusterAuthorizedOperations = false, false
		resp = r.roundTrip(req).(*kmsg.MetadataResponse)
		if resp.Topics[0].AuthorizedOperations != authorizedOperationsNone {
			t.Errorf("Metadata v%d not asked: topic authorized operations %d, want INT32_MIN", v, resp.Topics[0].AuthorizedOperations)
		}
	}

	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeClusterAuthorizedOperations = true
	dcr, err := dc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if dcr.ClusterAuthorizedOperations != wantClusterOps {
		t.Errorf("DescribeCluster authorized operations %d, want %d", dcr.ClusterAuthorizedOperations, wantClusterOps)
	}

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"no-such-group"}
	dg.IncludeAuthorizedOperations = true
	dgr, err := dg.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(dgr.Groups) != 1 || dgr.Groups[0].AuthorizedOperations != wantGroupOps {
		t.Errorf("DescribeGroups authorized operations %+v, want %d", dgr.Groups, wantGroupOps)
	}

	dt := kmsg.NewPtrDescribeTopicPartitionsRequest()
	rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
	rt.Topic = "ops"
	dt.Topics = append(dt.Topics, rt)
	dtr, err := dt.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(dtr.Topics) != 1 || dtr.Topics[0].AuthorizedOperations != wantTopicOps {
		t.Errorf("DescribeTopicPartitions authorized operations %+v, want %d", dtr.Topics, wantTopicOps)
	}
}

// TestFindCoordinatorTransaction: key type 1 is answered TRANSACTIONAL_ID_AUTHORIZATION_FAILED
// (fatal, so librdkafka and the Java producer fail at once), not INVALID_REQUEST (retried by
// librdkafka until its 30 s timeout).
func TestFindCoordinatorTransaction(t *testing.T) {
	t.Parallel()
	ts, _ := startGroupServer(t)
	r := ts.raw(t)
	for _, v := range []int16{1, 3, 4, 6} {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = v
		req.CoordinatorType = 1
		req.CoordinatorKey = "txn"
		req.CoordinatorKeys = []string{"txn"}
		resp := r.roundTrip(req).(*kmsg.FindCoordinatorResponse)
		code := resp.ErrorCode
		if v >= 4 {
			if len(resp.Coordinators) != 1 {
				t.Fatalf("v%d: %d coordinators", v, len(resp.Coordinators))
			}
			code = resp.Coordinators[0].ErrorCode
		}
		if code != kerr.TransactionalIDAuthorizationFailed.Code {
			t.Errorf("FindCoordinator v%d key type 1: error %d, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", v, code)
		}
	}
}

// TestUnservedAPIsAnswered: ACLs, quotas, SCRAM credentials, elections and reassignments are
// advertised and answered with a clear code instead of closing the connection.
func TestUnservedAPIsAnswered(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	cl := ts.client(t, kgo.MaxVersions(nil)) // no version cap: ask for the newest each side knows
	if _, err := ts.admin(t).CreateTopics(ctx, 2, 1, nil, "placed"); err != nil {
		t.Fatal(err)
	}
	versions, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	advertised := map[int16]bool{}
	for _, k := range versions.ApiKeys {
		advertised[k.ApiKey] = true
	}
	for _, k := range []int16{29, 30, 31, 43, 45, 46, 48, 49, 50, 51} {
		if !advertised[k] {
			t.Errorf("api key %d not advertised", k)
		}
	}

	check := func(what string, got, want int16) {
		t.Helper()
		if got != want {
			t.Errorf("%s: error %d, want %d (%s)", what, got, want, kerr.ErrorForCode(want))
		}
	}
	must := mustResponse(t)

	da := must(kmsg.NewPtrDescribeACLsRequest().RequestWith(ctx, cl)).(*kmsg.DescribeACLsResponse)
	check("DescribeAcls", da.ErrorCode, kerr.SecurityDisabled.Code)
	ca := kmsg.NewPtrCreateACLsRequest()
	ca.Creations = append(ca.Creations, kmsg.NewCreateACLsRequestCreation())
	car := must(ca.RequestWith(ctx, cl)).(*kmsg.CreateACLsResponse)
	if len(car.Results) != 1 {
		t.Fatalf("CreateAcls: %d results", len(car.Results))
	}
	check("CreateAcls", car.Results[0].ErrorCode, kerr.SecurityDisabled.Code)
	dl := kmsg.NewPtrDeleteACLsRequest()
	dl.Filters = append(dl.Filters, kmsg.NewDeleteACLsRequestFilter())
	dlr := must(dl.RequestWith(ctx, cl)).(*kmsg.DeleteACLsResponse)
	if len(dlr.Results) != 1 {
		t.Fatalf("DeleteAcls: %d results", len(dlr.Results))
	}
	check("DeleteAcls", dlr.Results[0].ErrorCode, kerr.SecurityDisabled.Code)

	el := kmsg.NewPtrElectLeadersRequest()
	et := kmsg.NewElectLeadersRequestTopic()
	et.Topic, et.Partitions = "placed", []int32{0, 1, 7}
	el.Topics = append(el.Topics, et)
	elr := must(el.RequestWith(ctx, cl)).(*kmsg.ElectLeadersResponse)
	if len(elr.Topics) != 1 || len(elr.Topics[0].Partitions) != 3 {
		t.Fatalf("ElectLeaders: %+v", elr.Topics)
	}
	for i, want := range []int16{kerr.ElectionNotNeeded.Code, kerr.ElectionNotNeeded.Code, kerr.UnknownTopicOrPartition.Code} {
		check("ElectLeaders", elr.Topics[0].Partitions[i].ErrorCode, want)
	}
	el.Topics = nil // every partition: none needs an election, none is listed
	if elr = must(el.RequestWith(ctx, cl)).(*kmsg.ElectLeadersResponse); elr.ErrorCode != 0 || len(elr.Topics) != 0 {
		t.Errorf("ElectLeaders for all partitions: %+v", elr)
	}

	ar := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	at := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	at.Topic = "placed"
	for _, replicas := range [][]int32{{ts.srv.st.Node().ID()}, {ts.srv.st.Node().ID() + 1}, nil} {
		p := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		p.Partition, p.Replicas = 0, replicas
		at.Partitions = append(at.Partitions, p)
	}
	ar.Topics = append(ar.Topics, at)
	arr := must(ar.RequestWith(ctx, cl)).(*kmsg.AlterPartitionAssignmentsResponse)
	if arr.ErrorCode != 0 || len(arr.Topics) != 1 || len(arr.Topics[0].Partitions) != 3 {
		t.Fatalf("AlterPartitionReassignments: %+v", arr)
	}
	for i, want := range []int16{0, kerr.InvalidReplicaAssignment.Code, kerr.NoReassignmentInProgress.Code} {
		check("AlterPartitionReassignments", arr.Topics[0].Partitions[i].ErrorCode, want)
	}
	lr := must(kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, cl)).(*kmsg.ListPartitionReassignmentsResponse)
	if lr.ErrorCode != 0 || len(lr.Topics) != 0 {
		t.Errorf("ListPartitionReassignments: %+v", lr)
	}

	dq := must(kmsg.NewPtrDescribeClientQuotasRequest().RequestWith(ctx, cl)).(*kmsg.DescribeClientQuotasResponse)
	if dq.ErrorCode != 0 || len(dq.Entries) != 0 {
		t.Errorf("DescribeClientQuotas: %+v", dq)
	}
	aq := kmsg.NewPtrAlterClientQuotasRequest()
	aqe := kmsg.NewAlterClientQuotasRequestEntry()
	ent := kmsg.NewAlterClientQuotasRequestEntryEntity()
	ent.Type, ent.Name = "client-id", kmsg.StringPtr("c")
	aqe.Entity = append(aqe.Entity, ent)
	op := kmsg.NewAlterClientQuotasRequestEntryOp()
	op.Key, op.Value = "producer_byte_rate", 1024
	aqe.Ops = append(aqe.Ops, op)
	aq.Entries = append(aq.Entries, aqe)
	aqr := must(aq.RequestWith(ctx, cl)).(*kmsg.AlterClientQuotasResponse)
	if len(aqr.Entries) != 1 || aqr.Entries[0].ErrorMessage == nil {
		t.Fatalf("AlterClientQuotas: %+v", aqr)
	}
	check("AlterClientQuotas", aqr.Entries[0].ErrorCode, kerr.InvalidRequest.Code)

	dsAll := must(kmsg.NewPtrDescribeUserSCRAMCredentialsRequest().RequestWith(ctx, cl)).(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if dsAll.ErrorCode != 0 || len(dsAll.Results) != 0 {
		t.Errorf("DescribeUserScramCredentials of every user: %+v, want none", dsAll)
	}
	dsReq := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	dsUser := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
	dsUser.Name = "alice"
	dsReq.Users = append(dsReq.Users, dsUser)
	ds := must(dsReq.RequestWith(ctx, cl)).(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if ds.ErrorCode != 0 || len(ds.Results) != 1 || ds.Results[0].User != "alice" {
		t.Fatalf("DescribeUserScramCredentials: %+v", ds)
	}
	check("DescribeUserScramCredentials", ds.Results[0].ErrorCode, kerr.UnsupportedSaslMechanism.Code)
	as := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	del.Name, del.Mechanism = "alice", 1
	as.Deletions = append(as.Deletions, del)
	asr := must(as.RequestWith(ctx, cl)).(*kmsg.AlterUserSCRAMCredentialsResponse)
	if len(asr.Results) != 1 || asr.Results[0].User != "alice" {
		t.Fatalf("AlterUserScramCredentials: %+v", asr)
	}
	check("AlterUserScramCredentials", asr.Results[0].ErrorCode, kerr.UnsupportedSaslMechanism.Code)
}

// TestMetadataAutoCreateAnswersLeaderNotAvailable: the Metadata response that creates a topic
// answers LEADER_NOT_AVAILABLE with no partitions, as Kafka does (its controller creates the
// topic asynchronously); the next one lists the partitions. Also after a deletion.
func TestMetadataAutoCreateAnswersLeaderNotAvailable(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *Config) { c.DefaultPartitions = 3 })
	ctx := testCtx(t)
	r := ts.raw(t)
	meta := func() kmsg.MetadataResponseTopic {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("fresh")
		req.Topics = append(req.Topics, mt)
		req.AllowAutoTopicCreation = true
		resp := r.roundTrip(req).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("%d topics", len(resp.Topics))
		}
		return resp.Topics[0]
	}
	for round := 0; round < 2; round++ {
		first := meta()
		if first.ErrorCode != kerr.LeaderNotAvailable.Code || len(first.Partitions) != 0 {
			t.Fatalf("round %d: creating response: error %d, %d partitions; want LEADER_NOT_AVAILABLE, none", round, first.ErrorCode, len(first.Partitions))
		}
		next := meta()
		if next.ErrorCode != 0 || len(next.Partitions) != 3 {
			t.Fatalf("round %d: next response: error %d, %d partitions; want 3", round, next.ErrorCode, len(next.Partitions))
		}
		if _, err := ts.admin(t).DeleteTopics(ctx, "fresh"); err != nil {
			t.Fatal(err)
		}
	}
}
