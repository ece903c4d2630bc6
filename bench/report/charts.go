package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // yard: blue
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

func fileName(parts ...string) string {
	s := strings.ToLower(strings.Join(parts, "-"))
	return strings.Trim(unsafeName.ReplaceAllString(s, "-"), "-") + ".png"
}

// writeCharts writes the throughput bars of each tool and the latency-over-time panels of
// each workload into dir and returns their file names.
func writeCharts(dir string, rs []*Result) ([]string, error) {
	var names []string
	type key struct{ protocol, tool string }
	var keys []key
	byTool := map[key][]*Result{}
	for _, r := range rs {
		k := key{r.Protocol, r.Tool}
		if _, ok := byTool[k]; !ok {
			keys = append(keys, k)
		}
		byTool[k] = append(byTool[k], r)
	}
	for _, k := range keys {
		n, err := throughputChart(dir, k.protocol, k.tool, byTool[k])
		if err != nil {
			return nil, err
		}
		if n != "" {
			names = append(names, n)
		}
	}
	type wkey struct{ protocol, tool, workload string }
	var wkeys []wkey
	byWorkload := map[wkey][]*Result{}
	for _, r := range rs {
		if len(r.Series) < 2 {
			continue
		}
		k := wkey{r.Protocol, r.Tool, r.Workload}
		if _, ok := byWorkload[k]; !ok {
			wkeys = append(wkeys, k)
		}
		byWorkload[k] = append(byWorkload[k], r)
	}
	for _, k := range wkeys {
		n, err := latencyChart(dir, k.protocol, k.tool, k.workload, byWorkload[k])
		if err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, nil
}

func rate(r *Result) float64 {
	if r.Protocol == "amqp" && r.ConsumedPerSec > 0 {
		return r.ConsumedPerSec // what the consumers received: the figure PerfTest's comparisons use
	}
	return r.RecordsPerSec
}

func throughputChart(dir, protocol, tool string, rs []*Result) (string, error) {
	var workloads, brokers []string
	for _, r := range rs {
		if rate(r) == 0 {
			continue
		}
		if !slices.Contains(workloads, r.Workload) {
			workloads = append(workloads, r.Workload)
		}
		if !slices.Contains(brokers, r.Broker) {
			brokers = append(brokers, r.Broker)
		}
	}
	if len(workloads) == 0 {
		return "", nil
	}
	slices.SortStableFunc(brokers, func(a, b string) int { return rank(a) - rank(b) })
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s, %s: throughput", protocol, tool)
	p.Y.Label.Text = "records/s"
	if protocol == "amqp" {
		p.Y.Label.Text = "messages/s received"
	}
	p.Legend.Top = true
	width := vg.Points(math.Max(4, 60/float64(len(brokers))))
	top := 0.0
	for i, b := range brokers {
		vals := make(plotter.Values, len(workloads))
		for j, w := range workloads {
			if r := find(rs, tool, w, b); r != nil {
				vals[j] = rate(r)
				top = math.Max(top, vals[j])
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return "", fmt.Errorf("cannot chart: %w", err)
		}
		bars.LineStyle.Width = 0
		bars.Color = palette[rank(b)%len(palette)]
		bars.Offset = width * vg.Length(float64(i)-float64(len(brokers)-1)/2)
		p.Add(bars)
		p.Legend.Add(b, bars)
	}
	p.NominalX(workloads...)
	p.X.Min, p.X.Max = -0.7, float64(len(workloads))-0.3 // room for the outer bars of a group
	p.X.Tick.Label.Rotation = 0.35
	p.X.Tick.Label.XAlign = draw.XRight
	p.Y.Min, p.Y.Max = 0, top*1.1+top*0.12*float64(len(brokers)) // room for the legend
	name := fileName(protocol, tool, "throughput")
	w := vg.Length(2.2+1.1*float64(len(workloads))) * vg.Inch
	if err := p.Save(min(w, 11*vg.Inch), 3.6*vg.Inch, filepath.Join(dir, name)); err != nil {
		return "", fmt.Errorf("cannot save chart: %w", err)
	}
	return name, nil
}

type line struct {
	label string
	pick  func(s Second) float64
	dash  bool
	c     color.Color
}

func latencyChart(dir, protocol, tool, workload string, rs []*Result) (string, error) {
	slices.SortStableFunc(rs, func(a, b *Result) int { return rank(a.Broker) - rank(b.Broker) })
	ack := func(f func(*Percentiles) float64) func(Second) float64 {
		return func(s Second) float64 {
			if s.Ack == nil {
				return 0
			}
			return f(s.Ack)
		}
	}
	lines := []line{
		{"ack p50", ack(p50), false, palette[3]},
		{"ack p99", ack(p99), false, palette[2]},
		{"ack p99.9", ack(p999), false, palette[1]},
		{"e2e p99", func(s Second) float64 {
			if s.E2E == nil {
				return 0
			}
			return s.E2E.P99
		}, true, palette[6]},
	}
	hasPct := false
	for _, r := range rs {
		for _, s := range r.Series {
			if s.Ack != nil && s.Ack.P99 > 0 {
				hasPct = true
			}
		}
	}
	if !hasPct { // ProducerPerformance: per-interval average and maximum only
		lines = []line{
			{"ack avg", ack(func(p *Percentiles) float64 { return p.Avg }), false, palette[3]},
			{"ack max", ack(func(p *Percentiles) float64 { return p.Max }), false, palette[1]},
		}
	}
	lo, hi := math.Inf(1), 0.0
	for _, r := range rs {
		for _, s := range r.Series {
			for _, l := range lines {
				if v := l.pick(s); v > 0 {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
		}
	}
	if hi == 0 {
		lo, hi = 0.1, 1
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	var plots [][]*plot.Plot
	row := make([]*plot.Plot, len(rs))
	for i, r := range rs {
		p := plot.New()
		p.Title.Text = r.Broker
		p.X.Label.Text = "s"
		if i == 0 {
			p.Y.Label.Text = "ms (log)"
		}
		p.X.Tick.Marker = intTicks{}
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Min, p.Y.Max = lo, hi
		for _, l := range lines {
			var xy plotter.XYs
			for _, s := range r.Series {
				if v := l.pick(s); v > 0 {
					xy = append(xy, plotter.XY{X: float64(s.T), Y: v})
				}
			}
			if len(xy) == 0 {
				continue
			}
			ln, err := plotter.NewLine(xy)
			if err != nil {
				return "", fmt.Errorf("cannot chart: %w", err)
			}
			ln.Color = l.c
			ln.Width = vg.Points(1.2)
			if l.dash {
				ln.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
			}
			p.Add(ln)
			if i == len(rs)-1 {
				p.Legend.Add(l.label, ln)
			}
		}
		p.Legend.Top = true
		p.Legend.TextStyle.Font.Size = vg.Points(7)
		row[i] = p
	}
	plots = append(plots, row)
	const tileW, tileH = 3.0 * vg.Inch, 2.4 * vg.Inch
	img := vgimg.New(tileW*vg.Length(len(rs)), tileH+0.3*vg.Inch)
	dc := draw.New(img)
	title := fmt.Sprintf("%s, %s, %s: latency per second", protocol, tool, workload)
	dc.FillText(draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, vg.Points(10)), Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YTop}, vg.Point{X: dc.Max.X / 2, Y: dc.Max.Y - vg.Points(2)}, title)
	area := draw.Canvas{Canvas: dc.Canvas, Rectangle: dc.Rectangle}
	area.Max.Y -= 0.3 * vg.Inch
	tiles := draw.Tiles{Rows: 1, Cols: len(rs), PadX: vg.Millimeter, PadY: vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	canvases := plot.Align(plots, tiles, area)
	for j := range rs {
		plots[0][j].Draw(canvases[0][j])
	}
	name := fileName(protocol, tool, workload, "latency")
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("cannot save chart: %w", err)
	}
	defer f.Close()
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		return "", fmt.Errorf("cannot save chart: %w", err)
	}
	return name, nil
}

// intTicks are the default ticks of a seconds axis with the fractional ones left out.
type intTicks struct{}

func (intTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(lo, hi) {
		if t.Value == math.Trunc(t.Value) {
			if t.Label != "" {
				t.Label = fmt.Sprintf("%.0f", t.Value)
			}
			out = append(out, t)
		}
	}
	return out
}
