package console

import (
	"context"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

//go:embed assets
var assetsFS embed.FS

// Handler is the console: an http.Handler to mount at Config.Path. Safe for
// concurrent use; it starts no goroutine.
type Handler struct {
	cfg     Config
	mux     *http.ServeMux
	pages   map[string]*template.Template
	static  http.Handler
	csrfKey []byte
	rates   rates
}

// New builds the console from cfg (defaults applied, then validated:
// errors match ErrInvalidConfig).
func New(cfg Config) (*Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, csrfKey: cfg.CSRFKey, rates: rates{last: map[string]sample{}}}
	if h.csrfKey == nil {
		k, err := newKey()
		if err != nil {
			return nil, fmt.Errorf("console: CSRF key: %w", err)
		}
		h.csrfKey = k
	}
	var err error
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(assetsFS, "assets/static")
	if err != nil {
		return nil, err
	}
	h.static = http.StripPrefix("/assets/", http.FileServerFS(static))
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.overview)
	m.HandleFunc("GET /groups/{stream}/{group}", h.group)
	m.HandleFunc("GET /deadletters", h.deadLetters)
	m.HandleFunc("GET /deadletters/{seq}", h.deadLetter)
	m.HandleFunc("GET /schedules", h.schedules)
	m.HandleFunc("GET /api/live", h.live)
	m.Handle("GET /assets/", h.static)
	write := func(pattern string, fn func(http.ResponseWriter, *http.Request)) {
		m.Handle(pattern, h.writeGuard(http.HandlerFunc(fn)))
	}
	write("POST /groups/{stream}/{group}/pause", h.pause)
	write("POST /groups/{stream}/{group}/resume", h.resume)
	write("POST /deadletters/replay", h.replay)
	write("POST /deadletters/purge", h.purge)
	write("POST /schedules/cancel", h.cancelSchedule)
	h.mux = m
}

// ServeHTTP serves the console under Config.Path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	if !h.hostAllowed(r.Host) {
		h.fail(w, r, http.StatusForbidden, fmt.Errorf("%w: %q", ErrHostNotAllowed, r.Host))
		return
	}
	if r.URL.Path+"/" == h.cfg.Path {
		http.Redirect(w, r, h.cfg.Path, http.StatusMovedPermanently)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, h.cfg.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = "/"+rest, ""
	r2.URL = &u
	h.mux.ServeHTTP(w, r2)
}

func (h *Handler) hostAllowed(host string) bool {
	if len(h.cfg.AllowedHosts) == 0 {
		return true
	}
	name := host
	if hn, _, err := net.SplitHostPort(host); err == nil {
		name = hn
	}
	return slices.ContainsFunc(h.cfg.AllowedHosts, func(a string) bool {
		return strings.EqualFold(a, host) || strings.EqualFold(strings.Trim(a, "[]"), strings.Trim(name, "[]"))
	})
}

// writeGuard admits a write only when writes are enabled and it carries
// the CSRF token of its page; cross-origin browser requests are refused
// before that (http.CrossOriginProtection).
func (h *Handler) writeGuard(next http.Handler) http.Handler {
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.cfg.AllowWrites {
			h.fail(w, r, http.StatusForbidden, fmt.Errorf("%w: this console is read-only (Config.AllowWrites; jetevents ui -writes)", ErrWritesDisabled))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if !h.checkCSRF(r) {
			h.cfg.Logger.Warn("console write refused: no valid CSRF token", "who", h.who(r), "path", r.URL.Path, "remote", r.RemoteAddr)
			h.fail(w, r, http.StatusForbidden, fmt.Errorf("%w: reload the page and try again", ErrCSRF))
			return
		}
		next.ServeHTTP(w, r)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusForbidden, fmt.Errorf("%w: cross-origin request", ErrCSRF))
	}))
	return cop.Handler(guarded)
}

// who is the request's user as the host names it.
func (h *Handler) who(r *http.Request) string {
	if h.cfg.Identity == nil {
		return "unknown"
	}
	if id := h.cfg.Identity(r); id != "" {
		return id
	}
	return "unknown"
}

// audit logs a write: who made it, what it was, and its outcome.
func (h *Handler) audit(r *http.Request, action string, err error, attrs ...any) {
	args := append([]any{"who", h.who(r), "action", action, "remote", r.RemoteAddr}, attrs...)
	if err != nil {
		h.cfg.Logger.Warn("console write failed", append(args, "error", err)...)
		return
	}
	h.cfg.Logger.Info("console write", args...)
}

// ctx bounds the server requests of one page or write.
func (h *Handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
}

// Flash: the outcome of a write, shown once by the page it redirects to.
const flashCookie = "jetevents_console_flash"

func (h *Handler) setFlash(w http.ResponseWriter, r *http.Request, msg string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(msg)), Path: h.cfg.Path,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 60})
}

func (h *Handler) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: h.cfg.Path, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return ""
	}
	return string(b)
}

// redirect answers a write: 303 to where (a console path, "" for the
// overview) with msg shown there once.
func (h *Handler) redirect(w http.ResponseWriter, r *http.Request, where, msg string) {
	h.setFlash(w, r, msg)
	http.Redirect(w, r, h.cfg.Path+strings.TrimPrefix(where, "/"), http.StatusSeeOther)
}

// view is what every page's template gets.
type view struct {
	Title   string
	Base    string // Config.Path
	Nav     string // overview, deadletters, schedules
	Writes  bool
	CSRF    string
	Flash   string
	Server  string // the server's name and version, and its URL without credentials
	Refresh int64  // ms
	Now     time.Time
	Data    any
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page, title, nav string, data any) {
	t := h.pages[page]
	v := view{Title: title, Base: h.cfg.Path, Nav: nav, Writes: h.cfg.AllowWrites, Flash: h.takeFlash(w, r),
		Server: h.serverText(), Refresh: h.cfg.Refresh.Milliseconds(), Now: time.Now(), Data: data}
	if h.cfg.AllowWrites {
		v.CSRF = h.csrfToken(w, r)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		h.cfg.Logger.Error("console: render", "page", page, "error", err)
		http.Error(w, "the console could not render this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// serverText names the server the console is connected to: name, version
// and the URL's scheme and host only. Not nats.go's ConnectedUrlRedacted,
// which hides a password but shows a token given as the URL's user.
func (h *Handler) serverText() string {
	nc := h.cfg.JetStream.Conn()
	if nc == nil || !nc.IsConnected() {
		return "not connected"
	}
	where := "?"
	if u, err := url.Parse(nc.ConnectedUrl()); err == nil {
		where = u.Scheme + "://" + u.Host
	}
	return fmt.Sprintf("%s %s at %s", nc.ConnectedServerName(), nc.ConnectedServerVersion(), where)
}

// errorData is the error page's.
type errorData struct {
	Status  int
	Message string
}

// fail answers an error page (or a JSON error for api/) with status.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		h.cfg.Logger.Error("console: request failed", "path", r.URL.Path, "error", err)
	}
	if strings.Contains(r.URL.Path, "/api/") || strings.Contains(r.Header.Get("Accept"), "application/json") && !strings.Contains(r.Header.Get("Accept"), "text/html") {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	h.render(w, r, status, "error", http.StatusText(status), "", errorData{Status: status, Message: err.Error()})
}

// statusOf is the HTTP status for an error of a read.
func statusOf(err error) int {
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// rates samples each durable's delivered count, for its rate.
type rates struct {
	mu   sync.Mutex
	last map[string]sample
}

type sample struct {
	at        time.Time
	delivered uint64
	rate      float64
	has       bool
}

// rate records the durable's delivered count at now and returns its
// deliveries per second since the previous sample at least a second older
// (ok false until there is one). Durables not seen for 10 minutes are
// forgotten.
func (rs *rates) rate(key string, delivered uint64, now time.Time) (float64, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	s, ok := rs.last[key]
	if ok && now.Sub(s.at) < time.Second {
		return s.rate, s.has
	}
	n := sample{at: now, delivered: delivered}
	if ok && delivered >= s.delivered && now.Sub(s.at) < 5*time.Minute {
		n.rate, n.has = float64(delivered-s.delivered)/now.Sub(s.at).Seconds(), true
	}
	rs.last[key] = n
	for k, v := range rs.last {
		if now.Sub(v.at) > 10*time.Minute {
			delete(rs.last, k)
		}
	}
	return n.rate, n.has
}
