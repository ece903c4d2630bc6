// Command keda-rabbitmq runs KEDA's own RabbitMQ scaler (github.com/kedacore/keda/v2's
// pkg/scalers, unchanged) once against a broker and prints what KEDA would feed the
// Horizontal Pod Autoscaler: the metric's value and whether the trigger is active.
//
// It lives in a module of its own so that yard's go.mod does not pull in KEDA's dependency
// tree; test/interop/ops drives it (keda_test.go) after setup.sh has built it.
//
// Usage: keda-rabbitmq -host URL -queue NAME [-protocol http|amqp] [-mode QueueLength|MessageRate]
// [-value N] [-activation N] [-vhost NAME] [-regex [-operation sum|avg|max]]. Output: one JSON line
// {"metric": NAME, "value": V, "active": B}, or an error on stderr and exit status 1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
	v2 "k8s.io/api/autoscaling/v2"
)

func main() {
	host := flag.String("host", "", "the trigger's host: http://user:pass@host:port/vhost or amqp://user:pass@host:port/vhost")
	queue := flag.String("queue", "", "the trigger's queueName")
	protocol := flag.String("protocol", "auto", "http, amqp or auto")
	mode := flag.String("mode", "QueueLength", "QueueLength, MessageRate, DeliverGetRate, ...")
	value := flag.String("value", "5", "the trigger's value (target per replica)")
	activation := flag.String("activation", "0", "the trigger's activationValue")
	vhost := flag.String("vhost", "", "the trigger's vhostName (overrides the host's)")
	regex := flag.Bool("regex", false, "the trigger's useRegex: queueName is a regular expression")
	operation := flag.String("operation", "sum", "with -regex: sum, avg or max over the matching queues")
	flag.Parse()
	md := map[string]string{"host": *host, "queueName": *queue, "protocol": *protocol, "mode": *mode,
		"value": *value, "activationValue": *activation}
	if *vhost != "" {
		md["vhostName"] = *vhost
	}
	if *regex {
		md["useRegex"], md["operation"] = "true", *operation
	}
	if err := run(md); err != nil {
		fmt.Fprintln(os.Stderr, "keda-rabbitmq:", err)
		os.Exit(1)
	}
}

func run(md map[string]string) error {
	cfg := &scalersconfig.ScalerConfig{
		ScalableObjectName: "yard-interop", ScalableObjectNamespace: "default", ScalableObjectType: "ScaledObject",
		TriggerName: "rabbitmq", TriggerType: "rabbitmq", TriggerMetadata: md,
		ResolvedEnv: map[string]string{}, AuthParams: map[string]string{},
		GlobalHTTPTimeout: 10 * time.Second, MetricType: v2.AverageValueMetricType,
	}
	s, err := scalers.NewRabbitMQScaler(cfg)
	if err != nil {
		return fmt.Errorf("cannot create the scaler: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer s.Close(ctx)
	specs := s.GetMetricSpecForScaling(ctx)
	if len(specs) != 1 || specs[0].External == nil {
		return fmt.Errorf("unexpected metric specs: %+v", specs)
	}
	name := specs[0].External.Metric.Name
	vals, active, err := s.GetMetricsAndActivity(ctx, name)
	if err != nil {
		return fmt.Errorf("cannot get the metric: %w", err)
	}
	if len(vals) != 1 {
		return fmt.Errorf("unexpected metric values: %+v", vals)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"metric": name, "value": vals[0].Value.AsApproximateFloat64(), "active": active})
}
