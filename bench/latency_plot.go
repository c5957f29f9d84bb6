package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// rowColors are the plot's line colours, in LatencyRows order (colour-blind
// safe: Okabe-Ito).
var rowColors = []string{"#000000", "#0072B2", "#56B4E9", "#D55E00", "#009E73", "#CC79A7", "#E69F00"}

// WriteLatencySVG plots the latency at percentile q (0..100) against the
// load, one line per row, for the events of size bytes: an SVG image (log
// scale latency axis), written by hand so that the benchmark needs no
// plotting library.
func WriteLatencySVG(w io.Writer, sums []LatencySummary, size int, q float64) error {
	const (
		width, height            = 760, 460
		left, right, top, bottom = 70, 210, 40, 50
	)
	type point struct{ load, ms float64 }
	lines := map[LatencyRow][]point{}
	var rows []LatencyRow
	minMs, maxMs := math.Inf(1), math.Inf(-1)
	minLoad, maxLoad := math.Inf(1), math.Inf(-1)
	for _, s := range sums {
		if s.Size != size || s.Load <= 0 {
			continue
		}
		ms := float64(s.Percentile(q)) / float64(time.Millisecond)
		ms = max(ms, 0.001)
		if _, ok := lines[s.Row]; !ok {
			rows = append(rows, s.Row)
		}
		lines[s.Row] = append(lines[s.Row], point{s.Load, ms})
		minMs, maxMs = min(minMs, ms), max(maxMs, ms)
		minLoad, maxLoad = min(minLoad, s.Load), max(maxLoad, s.Load)
	}
	if len(rows) == 0 {
		return fmt.Errorf("bench: no latency results at %s to plot", formatSize(size))
	}
	loY, hiY := math.Floor(math.Log10(minMs)), math.Ceil(math.Log10(maxMs))
	if hiY == loY {
		hiY++
	}
	if maxLoad == minLoad {
		minLoad, maxLoad = minLoad-0.05, maxLoad+0.05
	}
	padX := (maxLoad - minLoad) * 0.05
	minLoad, maxLoad = minLoad-padX, maxLoad+padX
	plotW, plotH := float64(width-left-right), float64(height-top-bottom)
	x := func(load float64) float64 { return float64(left) + (load-minLoad)/(maxLoad-minLoad)*plotW }
	y := func(ms float64) float64 { return float64(top) + (hiY-math.Log10(ms))/(hiY-loY)*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">p%s latency, publish (due time) to handler, %s events, open-loop load</text>`+"\n", left, fmtQ(q), formatSize(size))
	// Grid and axes: a line per decade, and its 2 and 5.
	for e := loY; e <= hiY; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) > hiY+1e-9 {
				break
			}
			yy := y(v)
			stroke, label := "#eeeeee", ""
			if m == 1 {
				stroke, label = "#cccccc", fmtMs(v)
			}
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", left, yy, width-right, yy, stroke)
			if label != "" {
				fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-6, yy, label)
			}
		}
	}
	var loads []float64
	for _, pts := range lines {
		for _, p := range pts {
			if !slices.Contains(loads, p.load) {
				loads = append(loads, p.load)
			}
		}
	}
	slices.Sort(loads)
	for _, l := range loads {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eeeeee"/>`+"\n", x(l), top, x(l), height-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f %%</text>`+"\n", x(l), height-bottom+18, 100*l)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333333"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">load (share of the raw consumer's measured maximum)</text>`+"\n", float64(left)+plotW/2, height-12)
	fmt.Fprintf(&b, `<text transform="translate(16 %.0f) rotate(-90)" text-anchor="middle">p%s latency (ms, log scale)</text>`+"\n", float64(top)+plotH/2, fmtQ(q))
	for i, row := range rows {
		pts := lines[row]
		slices.SortFunc(pts, func(a, b point) int { return int(math.Copysign(1, a.load-b.load)) })
		color := rowColors[i%len(rowColors)]
		var path []string
		for _, p := range pts {
			path = append(path, fmt.Sprintf("%.1f,%.1f", x(p.load), y(p.ms)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(path, " "))
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s: %.0f %% load, %s ms</title></circle>`+"\n", x(p.load), y(p.ms), color, html.EscapeString(string(row)), 100*p.load, fmtMs(p.ms))
		}
		ly := top + 10 + 20*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", width-right+14, ly, width-right+36, ly, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", width-right+42, ly, html.EscapeString(string(row)))
	}
	for j, row := range slices.Sorted(mapKeys(LatencyPending)) {
		ly := top + 10 + 20*(len(rows)+j)
		fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle" fill="#888888">%s: not yet</text>`+"\n", width-right+14, ly, html.EscapeString(string(row)))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtQ(q float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", q), "0"), ".")
}

func fmtMs(ms float64) string {
	switch {
	case ms >= 1:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", ms), "0"), ".")
	case ms >= 0.01:
		return strings.TrimRight(fmt.Sprintf("%.2f", ms), "0")
	}
	return strings.TrimRight(fmt.Sprintf("%.3f", ms), "0")
}
