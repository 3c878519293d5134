// Reads a JSON array of Prometheus Operator resources on stdin; prints one line per problem
// and exits 1 if any resource does not match its kind's schema.
import { ServiceMonitor, PrometheusRule, PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const kinds = { ServiceMonitor, PrometheusRule, PodMonitor };
let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = false;
for (const resource of JSON.parse(input)) {
  const Kind = kinds[resource.kind];
  if (!Kind || resource.apiVersion !== "monitoring.coreos.com/v1") {
    console.log(`${resource.kind}: not a monitoring.coreos.com/v1 kind this check knows`);
    failed = true;
    continue;
  }
  try {
    new Kind(resource).validate();
  } catch (error) {
    console.log(`${resource.kind}/${resource.metadata?.name}: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
