package eventstest

import "errors"

// Cluster failures. Every error of a Cluster method matches one of them
// (wrapped with the node and what was being waited for).
var (

	// ErrNoNode: a node index outside 0..Nodes-1.
	ErrNoNode = errors.New("eventstest: no such cluster node")

	// ErrNotReady: the cluster (NewCluster) or a restarted node (Restart)
	// did not become ready before ReadyTimeout, or a server process exited
	// on its own. The message holds every node's last observed state and
	// the tail of its output.
	ErrNotReady = errors.New("eventstest: cluster not ready")

	// ErrNoChildHook: a server process was started, but the test binary
	// ran its tests instead of a server, because TestMain does not call
	// RunServerIfChild first. Add the hook (see the package doc) or set
	// ClusterConfig.InProcess.
	ErrNoChildHook = errors.New("eventstest: the test binary does not call eventstest.RunServerIfChild in TestMain")

	// ErrNoLeader: no running node leads the meta group, stream or
	// consumer asked about: an election is in progress, the group has lost
	// its quorum, or it does not exist.
	ErrNoLeader = errors.New("eventstest: no leader")
)
