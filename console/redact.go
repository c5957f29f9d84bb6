package console

import "strings"

// redactedNames are the header name fragments whose values the console
// never shows (a producer that put a credential in an event's headers):
// their values are replaced by Redacted.
var redactedNames = []string{"authorization", "cookie", "token", "secret", "password", "passwd", "credential", "apikey", "api-key", "api_key", "session", "signature"}

// Redacted stands for a header value the console does not show.
const Redacted = "[redacted]"

// redactHeader reports whether the value of header name is hidden.
func redactHeader(name string) bool {
	n := strings.ToLower(name)
	for _, f := range redactedNames {
		if strings.Contains(n, f) {
			return true
		}
	}
	return false
}
