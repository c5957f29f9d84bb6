package eventstest

import "syscall"

// setDeathSignal makes the kernel SIGKILL the postgres server when the
// thread that started it ends (the spawner's, which lives until the test's
// cleanup or the test process's death): a killed test leaves no server.
// Its backends notice their postmaster's death and exit.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
