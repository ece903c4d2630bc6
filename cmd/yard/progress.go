package main

// A one-line progress bar on stderr for `yard produce` reading a large file: shown only when
// stderr is a terminal and the input's size is known (a regular file), redrawn at most every
// progressEvery.

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progressEvery bounds how often the bar is redrawn.
const progressEvery = 100 * time.Millisecond

// progressBarWidth is the bar's width in characters.
const progressBarWidth = 30

// progress counts bytes read through it and draws the bar.
type progress struct {
	r       io.Reader
	w       io.Writer
	total   int64
	read    int64
	records int
	start   time.Time
	drawn   time.Time
	now     func() time.Time
}

// newProgress wraps in with a progress bar on errOut, or returns nil when there is nothing
// to show (errOut is not a terminal, or in's size is unknown or small).
func newProgress(in io.Reader, errOut io.Writer) *progress {
	f, ok := in.(*os.File)
	ef, eok := errOut.(*os.File)
	if !ok || !eok || !term.IsTerminal(int(ef.Fd())) {
		return nil
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() < 1<<20 {
		return nil
	}
	return &progress{r: in, w: errOut, total: st.Size(), start: time.Now(), now: time.Now}
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	return n, err
}

// record counts one record sent and redraws if it is time.
func (p *progress) record() {
	p.records++
	if now := p.now(); now.Sub(p.drawn) >= progressEvery {
		p.drawn = now
		p.draw(now)
	}
}

// finish draws the final state and ends the line.
func (p *progress) finish() {
	p.draw(p.now())
	fmt.Fprintln(p.w)
}

func (p *progress) draw(now time.Time) {
	fmt.Fprint(p.w, "\r"+p.line(now))
}

// line renders "[#####.....]  45%  12.3/27.0 MiB  120345 records  8.1 MiB/s".
func (p *progress) line(now time.Time) string {
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(p.read)/float64(p.total), 1)
	}
	full := int(frac * progressBarWidth)
	bar := strings.Repeat("#", full) + strings.Repeat(".", progressBarWidth-full)
	rate := 0.0
	if el := now.Sub(p.start).Seconds(); el > 0 {
		rate = float64(p.read) / el
	}
	const mib = 1 << 20
	return fmt.Sprintf("[%s] %3.0f%%  %.1f/%.1f MiB  %d records  %.1f MiB/s ",
		bar, frac*100, float64(p.read)/mib, float64(p.total)/mib, p.records, rate/mib)
}
