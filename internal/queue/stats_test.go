package queue

import "testing"

func TestStats(t *testing.T) {
	t.Parallel()
	q := New("q", Options{})
	for range 3 {
		if _, err := q.Publish(&Message{Body: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	get := func() Delivery {
		t.Helper()
		d, _, ok, err := q.Get(false)
		if err != nil || !ok {
			t.Fatalf("get: %v %v", ok, err)
		}
		return d
	}
	a, b := get(), get()
	q.Ack(a.ID)
	q.Requeue(b.ID)
	if d := get(); !d.Redelivered {
		t.Fatal("requeued message not redelivered")
	}
	want := Stats{Published: 3, Delivered: 3, Redelivered: 1, Acked: 1}
	if got := q.Stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
}
