//go:build reliability

package reliability_test

import (
	"os"
	"testing"

	"github.com/jetevents/events/eventstest"
)

func TestMain(m *testing.M) {
	eventstest.RunServerIfChild() // the SIGKILLable servers are this binary
	code := m.Run()
	printTable()
	os.Exit(code)
}
