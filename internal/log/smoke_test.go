package log

import "testing"

func TestSmoke(t *testing.T) {
	for _, f := range fsFactories {
		t.Run(f.name, func(t *testing.T) {
			fsys, dir := f.make(t)
			l := mustOpen(t, dir, Options{FS: fsys, SegmentBytesMax: 10000})
			var want [][]byte
			for i := 0; i < 50; i++ {
				b := makeBatch(i%5+1, 100, int64(1000+i), byte(i))
				want = append(want, append([]byte(nil), b...))
				res := mustAppend(t, l, b)
				_ = res
			}
			got := readAll(t, l)
			if len(got) != len(want) {
				t.Fatalf("got %d batches want %d", len(got), len(want))
			}
			for i := range got {
				if !sameBatch(got[i], want[i]) {
					t.Fatalf("batch %d differs", i)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir, Options{FS: fsys, SegmentBytesMax: 10000})
			if got := readAll(t, l); len(got) != len(want) {
				t.Fatalf("after reopen got %d batches want %d", len(got), len(want))
			}
			l.Close()
		})
	}
}
