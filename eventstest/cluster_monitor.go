package eventstest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterPoll is how often the readiness wait asks the nodes again.
const clusterPoll = 50 * time.Millisecond

// jsz fetches node's /jsz with the query.
func (c *Cluster) jsz(node int, query string) (*server.JSInfo, error) {
	body, status, err := c.get(node, "/jsz?"+query)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("jsz: HTTP %d: %s", status, body)
	}
	var info server.JSInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("jsz: %w", err)
	}
	return &info, nil
}

// healthz is nil when node's /healthz says ok (JetStream current with the
// meta leader, and every stream and consumer it holds caught up).
func (c *Cluster) healthz(node int) error {
	body, status, err := c.get(node, "/healthz")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("healthz: HTTP %d: %s", status, strings.TrimSpace(string(body)))
	}
	return nil
}

func (c *Cluster) get(node int, path string) ([]byte, int, error) {
	resp, err := c.http.Get(c.MonitorURL(node) + path)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, 0, err
	}
	return body, resp.StatusCode, nil
}

// waitReady waits until every running node is healthy and all of them name
// the same running node as meta leader. must, when not -1, is a node that
// has to be running (a restarted one); any node's process exiting by
// itself ends the wait at once. Errors match ErrNotReady.
func (c *Cluster) waitReady(ctx context.Context, must int) error {
	t := time.NewTicker(clusterPoll)
	defer t.Stop()
	for {
		state, ready, exited := c.readiness(must)
		if ready {
			return nil
		}
		if exited != nil {
			return exited
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w after %s: %s", ErrNotReady, c.cfg.ReadyTimeout, state)
		case <-t.C:
		}
	}
}

// readiness is one look at every node: a description of what is not
// ready yet, whether everything is, and an error when a process exited.
func (c *Cluster) readiness(must int) (string, bool, error) {
	var notes []string
	leaders := map[string]bool{}
	running := map[string]bool{}
	ready := true
	for i, n := range c.nodes {
		if !n.runner.running() {
			if i == must || n.runner.exited() {
				return "", false, c.exitedErr(i)
			}
			notes = append(notes, fmt.Sprintf("node %d: stopped", i))
			continue
		}
		running[n.spec.Name] = true
		if err := c.healthz(i); err != nil {
			ready = false
			notes = append(notes, fmt.Sprintf("node %d: %v", i, err))
			continue
		}
		if c.standalone() {
			return "", true, nil // healthy is all a single server needs
		}
		jsz, err := c.jsz(i, "")
		switch {
		case err != nil:
			ready = false
			notes = append(notes, fmt.Sprintf("node %d: %v", i, err))
		case jsz.Meta == nil || jsz.Meta.Leader == "":
			ready = false
			notes = append(notes, fmt.Sprintf("node %d: no meta leader", i))
		default:
			leaders[jsz.Meta.Leader] = true
			notes = append(notes, fmt.Sprintf("node %d: meta leader %s", i, jsz.Meta.Leader))
		}
	}
	if len(leaders) != 1 {
		ready = false
	}
	for l := range leaders {
		if !running[l] {
			ready = false
		}
	}
	return strings.Join(notes, "; "), ready, nil
}

// exitedErr describes node i whose server is not running although it
// should: a process that exited by itself (or never ran the hook).
func (c *Cluster) exitedErr(i int) error {
	n := c.nodes[i]
	out := n.runner.output()
	if pr, ok := n.runner.(*processRunner); ok && !pr.ranHook() {
		return fmt.Errorf("node %d: %w (call it first thing in TestMain, or set ClusterConfig.InProcess); output:\n%s", i, ErrNoChildHook, out)
	}
	return fmt.Errorf("%w: node %d (%s) is not running; output:\n%s", ErrNotReady, i, n.spec.Name, out)
}
