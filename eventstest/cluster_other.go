//go:build !linux

package eventstest

import "syscall"

// childSysProcAttr: no Pdeathsig outside Linux; a server process still
// exits when its stdin pipe from the test process closes.
func childSysProcAttr() *syscall.SysProcAttr { return nil }
