{
  _config+:: {
    // Label matchers that every series selector of every alert and dashboard query carries:
    // the scrape job of these exporters, and whatever else tells them apart from another
    // Prometheus's (a cluster, a tenant), as `job="x", cluster="y"`.
    selector: 'job="northflank-backup-exporter"',

    // PollStale: how old the last good poll of a destination may get.
    pollStaleSeconds: 3600,
    // AddonStuck: "far longer than usual" is this many times the longest run of the last week,
    // and never less than the minimum.
    stuckRunMultiple: 3,
    stuckMinimumSeconds: 3600,
    // RestorableWindowEnding: the grace a backup gets past its slot (the exporter's
    // schedule.grace); how long after its slot a run counts as under way before it is listed;
    // the horizon of an addon with no schedule left.
    graceSeconds: 3600,
    underWaySeconds: 900,
    noScheduleHorizonSeconds: 24 * 3600,
    // AddonMissedRuns and VolumeMissedRuns: how long after the newest missed slot they fire.
    missedRunFiringSeconds: 24 * 3600,
    // SizeDrop: "far smaller" is below this share of the median of the recent completed sizes.
    sizeDropRatio: 0.5,
    // ScheduleNotArriving: how old managed storage's last full inventory may be (two of the
    // exporter's coverage.interval).
    inventoryStaleSeconds: 2 * 3600,
    // RateLimitLow: requests left in the API's rate-limit window.
    rateLimitRemaining: 100,
    // RestoreFailed: how long after a failed restore ended it fires; at least the exporter's
    // restores.interval (a failure may be seen that late) plus a day.
    restoreFailedSeconds: 2 * 24 * 3600,
    // RestoreStuck: how long a restore may be seen running.
    restoreStuckSeconds: 6 * 3600,
    // How long an addon, volume or restore alert outlives its condition: an exporter restart
    // or a short API outage must neither resolve it nor page again (Prometheus 2.42 or later).
    keepFiringFor: '15m',

    // Anything else of a rule, by its name, merged over it: its `for:`, its severity, e.g.
    // { NorthflankBackupAddonUnprotected: { 'for': '4h', labels+: { severity: 'info' } } }.
    ruleOverrides: {},

    // Each alert's runbook_url: %s is the alert's name in lower case.
    runbookURLPattern: 'https://github.com/northflank-backup-exporter/northflank-backup-exporter/blob/main/monitoring/README.md#%s',

    dashboard: {
      uid: 'northflank-backups',
      title: 'Northflank backups',
      tags: ['northflank', 'backups'],
      refresh: '1m',
      // The data source variable offers the data sources of this type.
      datasource: 'prometheus',
    },
  },
}
