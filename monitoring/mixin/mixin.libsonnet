// northflank-backup-exporter's monitoring mixin: prometheusAlerts and grafanaDashboards,
// tuned by overriding _config (config.libsonnet) in one's own jsonnet.
(import 'config.libsonnet') +
(import 'alerts/alerts.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
