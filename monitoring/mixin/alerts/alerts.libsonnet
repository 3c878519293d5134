// The alert rules. Each alert's runbook is the section of monitoring/README.md named after it
// (_config.runbookURLPattern); every threshold worth tuning is in _config (config.libsonnet).
{
  prometheusAlerts+:: {
    // Each rule with its runbook link, then whatever _config.ruleOverrides says of it.
    local finished(rule) = rule {
      annotations+: { runbook_url: $._config.runbookURLPattern % std.asciiLower(rule.alert) },
    } + std.get($._config.ruleOverrides, rule.alert, {}),
    groups+: [
      {
        name: 'northflank-backup-exporter',
        rules: [finished(rule) for rule in [
          {
            alert: 'NorthflankBackupExporterDown',
            expr: 'up{%(selector)s} == 0' % $._config,
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Northflank backup exporter {{ $labels.instance }} is down',
              description: 'Prometheus cannot scrape the Northflank backup exporter at {{ $labels.instance }} (job {{ $labels.job }}). While it is down no backup alert can fire.',
            },
          },
          {
            alert: 'NorthflankBackupExporterAbsent',
            expr: 'absent(up{%(selector)s})' % $._config,
            'for': '15m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'No Northflank backup exporter is being scraped',
              description: 'Prometheus has no target matching %s: the exporter was removed, renamed or its service discovery broke. No backup alert can fire.' % $._config.selector,
            },
          },
          {
            alert: 'NorthflankBackupDestinationDown',
            expr: 'northflank_up{%(selector)s} == 0' % $._config,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Backup destination {{ $labels.destination }} cannot be polled',
              description: "The exporter {{ $labels.instance }} failed to read every page of backup destination {{ $labels.destination }} for 15 minutes. Its backup metrics are its last good values and vanish after poll.stale_after; the exporter's log says why (HTTP status).",
            },
          },
          {
            alert: 'NorthflankBackupPollStale',
            expr: 'time() - northflank_exporter_last_successful_poll_timestamp_seconds{%(selector)s} > %(pollStaleSeconds)s' % $._config,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Backup destination {{ $labels.destination }} not polled successfully for {{ $value | humanizeDuration }}',
              description: 'The last good poll of backup destination {{ $labels.destination }} by {{ $labels.instance }} is {{ $value | humanizeDuration }} old: every backup metric of it is out of date.',
            },
          },
          {
            alert: 'NorthflankBackupAddonOverdue',
            // Past the grace by more than the schedule's longest gap: a second slot went
            // unanswered too. One failed run that the next slot answers pages nobody (backtest:
            // monitoring/README.md).
            expr: |||
              northflank_addon_backup_overdue_seconds{%(selector)s}
                > northflank_addon_backup_expected_interval_seconds{%(selector)s}
            ||| % $._config,
            'for': '5m',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Addon {{ $labels.project }}/{{ $labels.addon }} is overdue for a backup',
              description: 'No completed backup answers two schedule slots in a row of addon {{ $labels.addon }} in project {{ $labels.project }} (destination {{ $labels.destination }}): it is {{ $value | humanizeDuration }} past the first unanswered slot plus the grace period.',
            },
          },
          {
            alert: 'NorthflankBackupAddonMissedRuns',
            // Only while the newest miss is recent: counted over the whole lookback, one skipped
            // run fired for 7 days (backtest: monitoring/README.md).
            expr: 'northflank_addon_backup_missed_slots{%(selector)s} > 0 and time() - northflank_addon_backup_last_missed_slot_timestamp_seconds{%(selector)s} < %(missedRunFiringSeconds)s' % $._config,
            'for': '15m',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Addon {{ $labels.project }}/{{ $labels.addon }} skipped {{ $value }} scheduled backups',
              description: '{{ $value }} schedule slots of addon {{ $labels.addon }} in project {{ $labels.project }} (destination {{ $labels.destination }}) passed in the lookback, the newest within a day, with no backup of any status started for them, even if manual backups keep it fresh.',
            },
          },
          {
            alert: 'NorthflankBackupAddonFailing',
            // Two failures in a row: one alone is answered by the next run often enough that it
            // paged for nothing (backtest: monitoring/README.md).
            expr: 'northflank_addon_backup_consecutive_failures{%(selector)s} >= 2' % $._config,
            'for': '5m',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The latest backups of addon {{ $labels.project }}/{{ $labels.addon }} failed',
              description: '{{ $value }} backups of addon {{ $labels.addon }} in project {{ $labels.project }} (destination {{ $labels.destination }}) failed or were aborted since the last one that completed.',
            },
          },
          {
            alert: 'NorthflankBackupAddonStuck',
            expr: |||
              northflank_addon_backup_running_age_seconds{%(selector)s}
                > clamp_min(%(stuckRunMultiple)s * max_over_time(northflank_addon_backup_last_completed_duration_seconds{%(selector)s}[7d]), %(stuckMinimumSeconds)s)
            ||| % $._config,
            'for': '10m',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A backup of addon {{ $labels.project }}/{{ $labels.addon }} has been running for {{ $value | humanizeDuration }}',
              description: 'The oldest unfinished backup of addon {{ $labels.addon }} in project {{ $labels.project }} (destination {{ $labels.destination }}) started {{ $value | humanizeDuration }} ago, far longer than its recent backups took.',
            },
          },
          {
            alert: 'NorthflankBackupAddonNeverCompleted',
            expr: 'northflank_addon_backup_never_completed{%(selector)s} == 1' % $._config,
            'for': '1h',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Addon {{ $labels.project }}/{{ $labels.addon }} has no completed backup',
              description: 'Addon {{ $labels.addon }} in project {{ $labels.project }} (destination {{ $labels.destination }}) has backups, and none of them completed: there is nothing to restore it from.',
            },
          },
          {
            alert: 'NorthflankBackupAddonRestorableWindowEnding',
            // Pages when the window closes before the next backup can land: the slot whose run is
            // under way (or just due and not listed yet), else the next slot, plus the usual run
            // time (the last one; 0 when unknown), plus the grace. On a fixed 24 h horizon it paged
            // for 22.6 h on a healthy addon whose next daily run would land in time (backtest:
            // monitoring/README.md). An addon with no schedule left pages on the 24 h horizon.
            expr: |||
              northflank_addon_backup_restorable_until_timestamp_seconds{%(selector)s} - time()
                < %(graceSeconds)s - time()
                  + (
                      northflank_addon_backup_last_completed_duration_seconds{%(selector)s}
                      or northflank_addon_backup_restorable_until_timestamp_seconds{%(selector)s} * 0
                    )
                  + (
                      northflank_addon_backup_last_scheduled_timestamp_seconds{%(selector)s}
                        and (
                          time() - northflank_addon_backup_last_scheduled_timestamp_seconds{%(selector)s} < %(underWaySeconds)s
                          or northflank_addon_backup_running_age_seconds{%(selector)s}
                            < time() - northflank_addon_backup_last_scheduled_timestamp_seconds{%(selector)s} + %(underWaySeconds)s
                        )
                      or northflank_addon_backup_next_scheduled_timestamp_seconds{%(selector)s}
                    )
              or northflank_addon_backup_restorable_until_timestamp_seconds{%(selector)s} - time() < %(noScheduleHorizonSeconds)s
                unless northflank_addon_backup_next_scheduled_timestamp_seconds{%(selector)s}
            ||| % $._config,
            'for': '5m',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Addon {{ $labels.project }}/{{ $labels.addon }} will have nothing to restore in {{ $value | humanizeDuration }}',
              description: 'The last completed backup of addon {{ $labels.addon }} in project {{ $labels.project }} (destination {{ $labels.destination }}) that has not expired expires in {{ $value | humanizeDuration }}, before the next scheduled backup can complete, or the addon has no schedule left: unless a backup completes sooner, the addon cannot be restored after that.',
            },
          },
          {
            alert: 'NorthflankBackupAddonSizeDrop',
            expr: |||
              northflank_addon_backup_last_completed_size_bytes{%(selector)s}
                < %(sizeDropRatio)s * northflank_addon_backup_completed_size_median_bytes{%(selector)s}
            ||| % $._config,
            'for': '5m',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The latest backup of addon {{ $labels.project }}/{{ $labels.addon }} is far smaller than usual',
              description: 'The newest completed backup of addon {{ $labels.addon }} in project {{ $labels.project }} (destination {{ $labels.destination }}) is {{ $value | humanize1024 }}B, less than half the median of its recent backups. Data may have been lost, or the backup may be incomplete.',
            },
          },
          {
            alert: 'NorthflankBackupAddonUnprotected',
            expr: 'northflank_coverage_addon_unprotected{%(selector)s} == 1' % $._config,
            'for': '1h',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Addon {{ $labels.project }}/{{ $labels.addon }} has no backup schedule',
              description: 'Addon {{ $labels.addon }} in project {{ $labels.project }} declares no backup schedule and is not paused or being deleted: nothing backs it up, and no other backup alert can fire for it.',
            },
          },
          {
            alert: 'NorthflankBackupVolumeUnprotected',
            expr: 'northflank_coverage_volume_unprotected{%(selector)s} == 1' % $._config,
            'for': '1h',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Volume {{ $labels.project }}/{{ $labels.volume }} has no backup schedule',
              description: 'Volume {{ $labels.volume }} in project {{ $labels.project }} declares no backup schedule: nothing backs it up.',
            },
          },
          {
            alert: 'NorthflankBackupVolumeOverdue',
            // As AddonOverdue: past the grace by more than the schedule's longest gap.
            expr: |||
              northflank_volume_backup_overdue_seconds{%(selector)s}
                > northflank_volume_backup_expected_interval_seconds{%(selector)s}
            ||| % $._config,
            'for': '5m',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Volume {{ $labels.project }}/{{ $labels.volume }} is overdue for a backup',
              description: 'No completed backup answers two schedule slots in a row of volume {{ $labels.volume }} in project {{ $labels.project }}: it is {{ $value | humanizeDuration }} past the first unanswered slot plus the grace period.',
            },
          },
          {
            alert: 'NorthflankBackupVolumeMissedRuns',
            // As AddonMissedRuns: only while the newest miss is under a day old.
            expr: 'northflank_volume_backup_missed_slots{%(selector)s} > 0 and time() - northflank_volume_backup_last_missed_slot_timestamp_seconds{%(selector)s} < %(missedRunFiringSeconds)s' % $._config,
            'for': '15m',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Volume {{ $labels.project }}/{{ $labels.volume }} skipped {{ $value }} scheduled backups',
              description: '{{ $value }} schedule slots of volume {{ $labels.volume }} in project {{ $labels.project }} passed in the lookback, the newest within a day, with no backup of any status started for them.',
            },
          },
          {
            alert: 'NorthflankBackupScheduleNotArriving',
            // A schedule's backups should be listed where it sends them once its first slot is an
            // hour past; the addon has no backup of any status there. Only judged on fresh data:
            // the destination read within the hour (PollStale's limit) and its backups still held
            // (a destination failing for poll.stale_after drops them, and their absence says
            // nothing), or for managed storage a full inventory within two coverage rounds; a
            // short outage does not resolve it.
            expr: |||
              northflank_coverage_addon_backup_schedule_info{%(selector)s}
                unless on (account, project, addon, destination) northflank_addon_info{%(selector)s}
                and on (account, project, addon, schedule)
                  (time() - northflank_coverage_addon_backup_schedule_first_slot_timestamp_seconds{%(selector)s} > 3600)
                and on (account, destination)
                  (
                    time() - northflank_exporter_last_successful_poll_timestamp_seconds{%(selector)s} < %(pollStaleSeconds)s
                      and on (account, destination) group by (account, destination) (northflank_backups{%(selector)s})
                    or label_replace(
                      time() - northflank_coverage_last_successful_inventory_timestamp_seconds{%(selector)s} < %(inventoryStaleSeconds)s,
                      "destination", "northflank-managed", "", ""
                    )
                  )
            ||| % $._config,
            'for': '15m',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Backups of {{ $labels.project }}/{{ $labels.addon }} never arrive in {{ $labels.destination }}',
              description: "Schedule {{ $labels.schedule }} ({{ $labels.interval }} {{ $labels.backup_type }}) of addon {{ $labels.addon }} in project {{ $labels.project }} sends backups to {{ $labels.destination }} ({{ $labels.role }}), and that destination lists none of the addon's backups.",
            },
          },
          {
            alert: 'NorthflankBackupRestoreDrillOverdue',
            // The exporter reads a drilled addon's restores again the moment its drill lapses, so a
            // drill done since is seen before this fires. "None at all" is judged once its restores
            // have been read (northflank_addon_restores present).
            expr: |||
              time() - northflank_addon_restore_last_completed_timestamp_seconds{%(selector)s}
                > northflank_addon_restore_drill_interval_seconds{%(selector)s}
              or northflank_addon_restore_drill_interval_seconds{%(selector)s}
                unless on (account, project, addon)
                  northflank_addon_restore_last_completed_timestamp_seconds{%(selector)s}
                and on (account, project, addon) northflank_addon_restores{%(selector)s}
            ||| % $._config,
            'for': '1h',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Addon {{ $labels.project }}/{{ $labels.addon }} is overdue for a restore drill',
              description: 'Addon {{ $labels.addon }} in project {{ $labels.project }} is under a restore drill policy (restores.drills), and no restore of it completed within its drill interval, or none ever did: nobody has proved lately that its backups restore.',
            },
          },
          {
            alert: 'NorthflankBackupRestoreFailed',
            // A failure is seen at the addon's next read of its restores, up to restores.interval
            // (24 h) after it, unless the exporter watched it run: judged over two days, so that
            // every failure fires for at least a day.
            expr: 'time() - northflank_addon_restore_last_failed_timestamp_seconds{%(selector)s} < %(restoreFailedSeconds)s' % $._config,
            'for': '5m',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A restore of addon {{ $labels.project }}/{{ $labels.addon }} failed {{ $value | humanizeDuration }} ago',
              description: 'The newest failed or aborted restore of addon {{ $labels.addon }} in project {{ $labels.project }} ended {{ $value | humanizeDuration }} ago. If it was a drill, the backup it restored may not be usable.',
            },
          },
          {
            alert: 'NorthflankBackupRestoreStuck',
            // Timed from the first read that saw it running (the API gives no start), and read again
            // every poll while it runs.
            expr: 'northflank_addon_restore_running_seconds{%(selector)s} > %(restoreStuckSeconds)s' % $._config,
            'for': '10m',
            keep_firing_for: $._config.keepFiringFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A restore of addon {{ $labels.project }}/{{ $labels.addon }} has been running for {{ $value | humanizeDuration }}',
              description: 'A restore of addon {{ $labels.addon }} in project {{ $labels.project }} has been scheduled, in progress or aborting for {{ $value | humanizeDuration }} since the exporter first saw it: far longer than a restore takes.',
            },
          },
          {
            alert: 'NorthflankBackupCoverageDown',
            expr: 'northflank_coverage_up{%(selector)s} == 0' % $._config,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The coverage inventory of account {{ $labels.account }} is failing',
              description: 'The exporter {{ $labels.instance }} could not read every listing of the inventory (projects, addons, volumes, schedules, managed-storage backups) of account {{ $labels.account }} for 15 minutes. Unprotected databases may go unseen; its log names the listing and, for HTTP 401 or 403, the missing permission.',
            },
          },
          {
            alert: 'NorthflankBackupRateLimitLow',
            expr: 'northflank_exporter_rate_limit_remaining{%(selector)s} < %(rateLimitRemaining)s' % $._config,
            'for': '5m',
            labels: { severity: 'info' },
            annotations: {
              summary: 'Only {{ $value }} Northflank API requests left in this rate-limit window',
              description: 'The API token used by {{ $labels.instance }} has {{ $value }} requests left before the hourly window resets. Everything else that uses the token (CI, the CLI, scripts) will be throttled too.',
            },
          },
          {
            alert: 'NorthflankBackupExporterShardsInconsistent',
            // Sharded exporters (--shard N --total-shards M) must agree on M, and all M must be
            // scraped; otherwise some destinations are polled by nobody (or twice).
            expr: |||
              count by (job) (count_values by (job) ("total", northflank_exporter_total_shards{%(selector)s})) > 1 or count by (job) (count_values by (job) ("ordinal", northflank_exporter_shard_ordinal{%(selector)s}))
                != max by (job) (northflank_exporter_total_shards{%(selector)s})
            ||| % $._config,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The shards of job {{ $labels.job }} do not add up',
              description: 'The exporters of job {{ $labels.job }} disagree on --total-shards, or not every shard from 0 to --total-shards - 1 is being scraped: the destinations of the missing shards are not monitored.',
            },
          },
        ]],
      },
    ],
  },
}
