//go:build unix

package eventstest

import "syscall"

// credentialAttr runs a PostgreSQL program as the cluster's account.
func credentialAttr(as pgUser) *syscall.SysProcAttr {
	if !as.switchTo {
		return &syscall.SysProcAttr{}
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: as.uid, Gid: as.gid, NoSetGroups: true}}
}
