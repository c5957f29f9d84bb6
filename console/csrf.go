package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// CSRF: a signed double-submit token. Each browser gets a random nonce in
// an HttpOnly, SameSite=Strict cookie; the token a page's forms carry is
// HMAC-SHA256(key, nonce). A write must present both, and the token must be
// the nonce's: a site that can plant a cookie (a sibling subdomain) cannot
// make a token for it without the key, and a cross-site form cannot read
// the token. http.CrossOriginProtection in front refuses cross-origin
// browser requests as well.

const (
	csrfCookie = "jetevents_console_csrf"
	// CSRFField is the form field (and CSRFHeader the header) a write
	// carries its CSRF token in; the console's pages fill it in.
	CSRFField  = "csrf"
	CSRFHeader = "X-CSRF-Token"
)

func newKey() ([]byte, error) {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	return k, err
}

func (h *Handler) sign(nonce string) string {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfToken returns the token for the request's browser, setting its nonce
// cookie first when it has none.
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return h.sign(c.Value)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	nonce := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: nonce, Path: h.cfg.Path,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	return h.sign(nonce)
}

// checkCSRF reports whether the write carries the token of its cookie's
// nonce (in the form field or the header).
func (h *Handler) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue(CSRFField)
	}
	want := h.sign(c.Value)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
