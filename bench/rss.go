package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrNoRSS reports that the resident set size cannot be read here
// (/proc/self/statm exists on Linux only).
var ErrNoRSS = errors.New("bench: resident set size unavailable")

// RSS is this process's resident set size in bytes, from /proc/self/statm:
// the client and, when the server is embedded, the server too.
func RSS() (uint64, error) { return rssFile("/proc/self/statm") }

// RSSOf is the resident set size in bytes of process pid (/proc/<pid>/statm).
func RSSOf(pid int) (uint64, error) { return rssFile(fmt.Sprintf("/proc/%d/statm", pid)) }

func rssFile(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoRSS, err)
	}
	return parseStatm(string(b), os.Getpagesize())
}

// parseStatm reads the resident pages (the second field) of a statm line
// and converts them to bytes.
func parseStatm(line string, pageSize int) (uint64, error) {
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return 0, fmt.Errorf("%w: statm %q has no resident field", ErrNoRSS, line)
	}
	pages, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: statm resident field %q: %w", ErrNoRSS, fields[1], err)
	}
	return pages * uint64(pageSize), nil
}
