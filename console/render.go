package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// pageNames are the templates under assets/templates, each rendered inside
// layout.html.
var pageNames = []string{"overview", "group", "deadletters", "deadletter", "confirm", "schedules", "error"}

func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(assetsFS, "assets/templates/layout.html", "assets/templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"num":   numText,
	"bytes": bytesText,
	"size":  func(n int) string { return bytesText(uint64(max(n, 0))) },
	"dur":   durText,
	"ago":   agoText,
	"utc":   utcText,
	"seg":   url.PathEscape,
	"query": func(v url.Values) string { return v.Encode() },
	"key":   func(parts ...string) string { return strings.Join(parts, "/") },
}

// numText is n with thousands separators: 100,000.
func numText(n any) string {
	var s string
	switch v := n.(type) {
	case int:
		s = strconv.Itoa(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	case uint64:
		s = strconv.FormatUint(v, 10)
	default:
		return fmt.Sprint(v)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// bytesText is n in binary units: "312 B", "1.5 KiB".
func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// durText is d rounded for reading: 450ms, 12s, 3m20s, 5h3m, 2d4h.
func durText(d time.Duration) string {
	if d >= time.Second {
		d = d.Round(time.Second) // 59m59.9s is 1h
	}
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		d = d.Round(time.Second)
		return trimZero(fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60), "0s")
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return trimZero(fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60), "0m")
	}
	days := int(d.Hours()) / 24
	return fmt.Sprintf("%dd%dh", days, int(d.Hours())-24*days)
}

// agoText is "never", "12s ago", "3m ago".
func agoText(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return durText(max(now.Sub(t), 0)) + " ago"
}

func utcText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// trimZero drops a zero last unit: "30m0s" is "30m", "1m10s" stays.
func trimZero(s, zero string) string {
	if strings.HasSuffix(s, zero) && len(s) > len(zero) && (s[len(s)-len(zero)-1] < '0' || s[len(s)-len(zero)-1] > '9') {
		return s[:len(s)-len(zero)]
	}
	return s
}
