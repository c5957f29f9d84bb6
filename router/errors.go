package router

import (
	"errors"
)

// ErrRunning is returned by Run on a router that is running or has run:
// a Router runs once.
var ErrRunning = errors.New("router: already running or stopped")

// ErrShutdown is matched by the error Run returns when shutting down did not
// go cleanly: in-flight handlers outlived CloseTimeout (their messages were
// nacked for redelivery, never acked), or async publishes (Config.Flush, a
// KVStore's processed marks) could not be flushed.
var ErrShutdown = errors.New("router: unclean shutdown")

// ErrSubscriptionEnded is matched by the error Run returns when a group's
// consumer ended for good while Run's context was live (its stream still gone
// two heartbeats after the stall was noticed, permission to pull withdrawn):
// Run stops every group rather than run without one. A deleted durable, a
// lost pull or a leader change do not end it: they are recovered.
var ErrSubscriptionEnded = errors.New("router: subscription ended")

// ErrUnknownGroup is matched by the error of Pause or Resume (and
// StreamPauser's) for a group that is not one of the router's; the message
// names the router's groups.
var ErrUnknownGroup = errors.New("router: no such group")
