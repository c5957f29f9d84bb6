//go:build !linux

package eventstest

import "syscall"

// setDeathSignal: no Pdeathsig outside Linux; the test's cleanup stops the
// server.
func setDeathSignal(*syscall.SysProcAttr) {}
