package metrics_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLayering_only_the_observability_packages_link_prometheus_and_the_otel_sdk
// guards the hook design: the router and the layers under it call hooks, so
// a service without metrics or tracing links neither Prometheus nor the
// OpenTelemetry SDK (the marshaler links the small otel/trace API only, to
// write traceparent from a span context).
func TestLayering_only_the_observability_packages_link_prometheus_and_the_otel_sdk(t *testing.T) {
	for _, pkg := range []string{"router", "middleware", "jetstream", "transport", "marshaler", "envelope"} {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "github.com/jetevents/events/"+pkg).CombinedOutput()
			require.NoError(t, err, "%s", out)
			for _, dep := range strings.Fields(string(out)) {
				assert.False(t, strings.HasPrefix(dep, "github.com/prometheus/"), "%s links %s", pkg, dep)
				assert.False(t, strings.HasPrefix(dep, "go.opentelemetry.io/otel/sdk"), "%s links %s", pkg, dep)
				assert.NotEqual(t, "github.com/jetevents/events/metrics", dep)
				assert.NotEqual(t, "github.com/jetevents/events/tracing", dep)
			}
		})
	}
}
