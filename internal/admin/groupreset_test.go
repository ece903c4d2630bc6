package admin_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A memberless group's committed offsets move to the log start or end; a group with a live
// member is refused and keeps its offsets.
func TestGroupResetOffsets(t *testing.T) {
	tb := startBroker(t)
	ctx, cl, adm := kafkaTopicT(t, tb)
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Partition: int32(i % 2), Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "t", Partition: 0, At: 1, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "t", Partition: 1, At: 1, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "g", offs); err != nil {
		t.Fatal(err)
	}
	committed := func(group string) map[int32]int64 {
		t.Helper()
		got, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]int64{}
		got.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
		return out
	}
	reset := func(group, body string, want int) {
		t.Helper()
		if status, resp := tb.do(t, "POST", "/api/kafka/groups/"+group+"/reset-offsets", body); status != want {
			t.Fatalf("reset %s with %s: %d %s, want %d", group, body, status, resp, want)
		}
	}
	reset("g", `{"to": "latest"}`, 204)
	if got := committed("g"); got[0] != 3 || got[1] != 2 {
		t.Fatalf("after a reset to latest: %v, want 0:3 1:2", got)
	}
	reset("g", `{"to": "earliest"}`, 204)
	if got := committed("g"); got[0] != 0 || got[1] != 0 {
		t.Fatalf("after a reset to earliest: %v, want 0:0 1:0", got)
	}
	reset("g", `{"to": "yesterday"}`, 400)
	reset("g", `{`, 400)
	reset("nosuch", `{"to": "latest"}`, 404)

	// A live member: 409, nothing moves.
	member, err := kgo.NewClient(kgo.SeedBrokers(tb.b.Addr("kafka").String()), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	for n := 0; n < 5 && ctx.Err() == nil; {
		n += len(member.PollFetches(ctx).Records())
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	before := committed("live")
	reset("live", `{"to": "earliest"}`, 409)
	if got := committed("live"); got[0] != before[0] || got[1] != before[1] || got[0] == 0 {
		t.Fatalf("a refused reset moved offsets: %v, before %v", got, before)
	}
}
