//go:build reliability

package reliability_test

import (
	"os"
	"testing"

	"github.com/jetevents/events/eventstest"
)

func TestMain(m *testing.M) {
	eventstest.RunServerIfChild() // the SIGKILLable servers are this binary
	runRouterIfChild()            // and so are the SIGKILLable router processes
	runServiceIfChild()           // the outbox's service processes (writer + relay)
	runInboxRouterIfChild()       // the inbox's router processes
	code := m.Run()
	printTable()
	os.Exit(code)
}
