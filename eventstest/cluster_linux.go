package eventstest

import "syscall"

// childSysProcAttr makes the kernel SIGKILL a server process when the
// thread that started it ends, which happens when the test process dies
// (see spawner for why that thread is locked).
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
