// The Grafana dashboard: overview, addons, backups, exporter health, coverage, volumes and
// restores. Every query carries _config.selector and the dashboard's variables.
local p = import '../lib/panels.libsonnet';

{
  grafanaDashboards+:: {
    'northflank-backups.json':
      local c = $._config;
      local d = c.dashboard;
      // The label matchers of each query, by how far the variables narrow it.
      local f = {
        job: '%s,job=~"$job"' % c.selector,
        account: self.job + ',account=~"$account"',
        destination: self.account + ',destination=~"$destination"',
        destinationProject: self.destination + ',project=~"$project"',
        addon: self.destinationProject + ',addon=~"$addon"',
        project: self.account + ',project=~"$project"',
        projectAddon: self.project + ',addon=~"$addon"',
      };
      {
        title: d.title,
        uid: d.uid,
        description: 'Backups of Northflank addons, from northflank-backup-exporter.',
        tags: d.tags,
        timezone: 'utc',
        schemaVersion: 39,
        version: 1,
        editable: true,
        graphTooltip: 1,
        refresh: d.refresh,
        time: { from: 'now-24h', to: 'now' },
        annotations: { list: [] },
        links: [],
        templating: {
          list: [
            {
              name: 'datasource',
              label: 'Data source',
              type: 'datasource',
              query: d.datasource,
              current: {},
              hide: 0,
              refresh: 1,
              options: [],
              regex: '',
            },
            p.variable('job', 'Job', 'northflank_exporter_build_info{%s}' % c.selector, 'job'),
            p.variable('account', 'Account', 'northflank_up{%(job)s}' % f, 'account'),
            p.variable('destination', 'Destination', 'northflank_up{%(account)s}' % f, 'destination'),
            p.variable('project', 'Project', 'northflank_addon_info{%(destination)s}' % f, 'project'),
            p.variable('addon', 'Addon', 'northflank_addon_info{%(destinationProject)s}' % f, 'addon'),
          ],
        },
        panels: p.layout([
          p.row('Overview'),
          p.stat('Addons overdue', 'Addons past their first unanswered schedule slot plus the grace period.', 'count(northflank_addon_backup_overdue_seconds{%(addon)s} > 0) or vector(0)' % f, unit='short', steps=[{ color: 'green', value: null }, { color: 'red', value: 1 }]) + p.size(4, 4),
          p.stat('Addons failing', 'Addons whose newest failed or aborted backup is newer than their last completed one.', 'count(northflank_addon_backup_last_failure_timestamp_seconds{%(addon)s} > northflank_addon_backup_last_completed_timestamp_seconds{%(addon)s}) or vector(0)' % f, unit='short', steps=[{ color: 'green', value: null }, { color: 'red', value: 1 }]) + p.size(4, 4),
          p.stat('Never completed', 'Addons with backups, none of which completed.', 'sum(northflank_addon_backup_never_completed{%(addon)s}) or vector(0)' % f, unit='short', steps=[{ color: 'green', value: null }, { color: 'red', value: 1 }]) + p.size(4, 4),
          p.stat('Addons with missed runs', 'Addons whose scheduler skipped slots in the lookback.', 'count(northflank_addon_backup_missed_slots{%(addon)s} > 0) or vector(0)' % f, unit='short', steps=[{ color: 'green', value: null }, { color: 'red', value: 1 }]) + p.size(4, 4),
          p.stat('Destinations down', 'Destinations whose last poll failed.', 'count(northflank_up{%(destination)s} == 0) or vector(0)' % f, unit='short', steps=[{ color: 'green', value: null }, { color: 'red', value: 1 }]) + p.size(4, 4),
          p.stat('Bytes stored', 'Sum of the sizes of the completed backups listed.', 'sum(northflank_backup_size_bytes{%(destination)s,status="completed"})' % f, unit='bytes', steps=[{ color: 'blue', value: null }]) + p.size(4, 4),
          p.row('Addons'),
          p.table('Last completed backup against the schedule', 'One row per addon: how old its newest completed backup is, next to the longest gap its schedule allows.', ['northflank_addon_backup_last_completed_age_seconds{%(addon)s}' % f, 'northflank_addon_backup_expected_interval_seconds{%(addon)s}' % f, 'northflank_addon_backup_overdue_seconds{%(addon)s}' % f, 'northflank_addon_backup_missed_slots{%(addon)s}' % f, 'northflank_addon_backup_last_completed_size_bytes{%(addon)s}' % f], exclude={ Time: true, job: true, instance: true }, rename={ 'Value #A': 'Last completed age', 'Value #B': 'Expected interval', 'Value #C': 'Overdue', 'Value #D': 'Missed slots', 'Value #E': 'Last size' }, unit='short', overrides=[{ matcher: { id: 'byName', options: 'Last completed age' }, properties: [{ id: 'unit', value: 's' }] }, { matcher: { id: 'byName', options: 'Expected interval' }, properties: [{ id: 'unit', value: 's' }] }, { matcher: { id: 'byName', options: 'Overdue' }, properties: [{ id: 'unit', value: 's' }] }, { matcher: { id: 'byName', options: 'Missed slots' }, properties: [{ id: 'unit', value: 'short' }] }, { matcher: { id: 'byName', options: 'Last size' }, properties: [{ id: 'unit', value: 'bytes' }] }], options={}) + p.size(24, 10),
          p.timeseries('Last completed age by addon', '', [p.series('northflank_addon_backup_last_completed_age_seconds{%(addon)s}' % f, '{{project}}/{{addon}}')], unit='s') + p.size(12, 8),
          p.timeseries('Oldest running backup by addon', 'Age of the oldest backup still scheduled, in progress or aborting.', [p.series('northflank_addon_backup_running_age_seconds{%(addon)s}' % f, '{{project}}/{{addon}}')], unit='s') + p.size(12, 8),
          p.row('Backups'),
          p.timeseries('Backups by status', '', [p.series('sum by (status) (northflank_backups{%(destination)s})' % f, '{{status}}')], unit='short') + p.size(12, 8),
          p.timeseries('Bytes stored by destination', '', [p.series('sum by (destination) (northflank_backup_size_bytes{%(destination)s,status="completed"})' % f, '{{destination}}')], unit='bytes') + p.size(12, 8),
          p.timeseries('Backups expiring within the warning window', '', [p.series('northflank_backups_expiring{%(destination)s}' % f, '{{destination}}')], unit='short') + p.size(12, 8),
          p.timeseries('Time left to restore (if no backup completes)', 'Until the last completed backup that has not expired expires.', [p.series('northflank_addon_backup_restorable_until_timestamp_seconds{%(addon)s} - time()' % f, '{{project}}/{{addon}}')], unit='s') + p.size(12, 8),
          p.row('Exporter health'),
          p.timeseries('Poll duration', '', [p.series('northflank_exporter_poll_duration_seconds{%(destination)s}' % f, '{{destination}}')], unit='s') + p.size(8, 8),
          p.timeseries('API requests by code', '', [p.series('sum by (code) (rate(northflank_exporter_api_requests_total{%(account)s}[$__rate_interval]))' % f, '{{code}}')], unit='reqps') + p.size(8, 8),
          p.timeseries('Rate-limit headroom', "Requests left in the API token's hourly window.", [p.series('northflank_exporter_rate_limit_remaining{%(account)s}' % f, '{{instance}}')], unit='short') + p.size(8, 8),
          p.timeseries('Destination up', '', [p.series('northflank_up{%(destination)s}' % f, '{{destination}}')], unit='short') + p.size(12, 8),
          p.timeseries('Invalid backups skipped', '', [p.series('sum by (destination) (increase(northflank_exporter_invalid_backups_total{%(destination)s}[$__rate_interval]))' % f, '{{destination}}')], unit='short') + p.size(12, 8),
          p.timeseries('Poll failures by reason', 'Failed polls, by HTTP status or kind of failure.', [p.series('sum by (destination, reason) (increase(northflank_exporter_poll_failures_total{%(destination)s}[$__rate_interval]))' % f, '{{destination}} {{reason}}')], unit='short') + p.size(8, 8),
          p.timeseries('Effective poll interval', 'poll.interval, stretched when the request budget requires it.', [p.series('northflank_exporter_poll_interval_effective_seconds{%(destination)s}' % f, '{{destination}}')], unit='s') + p.size(8, 8),
          p.timeseries('Time throttled by the request budget', 'Share of time requests waited for the budget, the reserve or a 429.', [p.series('rate(northflank_exporter_throttled_seconds_total{%(account)s}[$__rate_interval])' % f, '{{instance}}')], unit='percentunit') + p.size(8, 8),
          p.timeseries('Requests the budget still allows this rolling hour', 'Requests of rate_limit.requests_per_hour not yet spent in the last hour. A full read may use three quarters of the hour; the rest is kept for the polls after it.', [p.series('northflank_exporter_rate_limit_budget_remaining_requests{%(account)s}' % f, '{{instance}} {{account}}')], unit='short') + p.size(12, 8),
          p.timeseries('Time left in the current poll cycle', 'Estimated seconds until the poll cycle under way completes (0 when idle): above a few seconds, the budget, the reserve or a 429 is pacing a large read; the log says why and what would shorten it.', [p.series('northflank_exporter_poll_cycle_remaining_seconds{%(account)s}' % f, '{{instance}} {{account}}')], unit='s') + p.size(12, 8),
          p.row('Coverage'),
          p.table('Unprotected addons and volumes', 'Every active addon or volume that declares no backup schedule (paused, deleting and deleted addons are left out by the exporter). Nothing backs these up.', ['northflank_coverage_addon_info{%(projectAddon)s} and on (account, project, addon) (northflank_coverage_addon_unprotected{%(projectAddon)s} == 1)' % f, 'northflank_coverage_volume_info{%(project)s} and on (account, project, volume) (northflank_coverage_volume_unprotected{%(project)s} == 1)' % f], exclude={ Time: true, Value: true, __name__: true, job: true, instance: true }, rename={ project_name: 'Project name', addon_name: 'Addon name', volume_name: 'Volume name', addon_type: 'Type', status: 'Status' }, unit='short', overrides=[], options={ showHeader: true }) + p.size(12, 9),
          p.timeseries('Protected and unprotected per project', 'Addons and volumes per project that declare at least one backup schedule (protected) and that declare none while active (unprotected).', [p.series('sum by (project) ((northflank_coverage_addon_backup_schedules{%(project)s} > bool 0) or (northflank_coverage_volume_backup_schedules{%(project)s} > bool 0))' % f, '{{project}} protected'), p.series('sum by (project) (northflank_coverage_addon_unprotected{%(project)s} or northflank_coverage_volume_unprotected{%(project)s})' % f, '{{project}} unprotected')], unit='short', custom={ drawStyle: 'bars', fillOpacity: 60, stacking: { mode: 'normal', group: 'A' } }, options={ legend: { displayMode: 'table', placement: 'right' }, tooltip: { mode: 'multi' } }) + p.size(12, 9),
          p.row('Volumes'),
          p.table('Volume backups against their schedules', 'Every scheduled volume: how old its newest completed backup is (volume backups have no completedAt: its createdAt), how far it is past the first unanswered slot plus the grace (0 on schedule), and the slots of the lookback with no backup at all.', ['northflank_volume_backup_last_completed_age_seconds{%(project)s}' % f, 'northflank_volume_backup_overdue_seconds{%(project)s}' % f, 'northflank_volume_backup_missed_slots{%(project)s}' % f], exclude={ Time: true, __name__: true, job: true, instance: true }, rename={ 'Value #A': 'Newest completed, age', 'Value #B': 'Overdue', 'Value #C': 'Missed slots' }, unit='short', overrides=[{ matcher: { id: 'byName', options: 'Newest completed, age' }, properties: [{ id: 'unit', value: 's' }] }, { matcher: { id: 'byName', options: 'Overdue' }, properties: [{ id: 'unit', value: 's' }] }], options={ showHeader: true }) + p.size(12, 9),
          p.timeseries('Volume backups by status', 'The backups each volume lists, by status (free text in the API, shown in lower case).', [p.series('sum by (project, volume, status) (northflank_volume_backups{%(project)s})' % f, '{{project}}/{{volume}} {{status}}')], unit='short', options={ legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } }) + p.size(12, 9),
          p.row('Restores'),
          p.table('Restores and drills', 'Per addon whose restores were read: how long ago its newest completed restore ended, how old the point in time it restored was, how often a drill policy wants it restored, whether that drill is overdue, how long ago its newest failed or aborted restore ended, and how long a restore has been seen running.', ['time() - northflank_addon_restore_last_completed_timestamp_seconds{%(projectAddon)s}' % f, 'time() - northflank_addon_restore_last_completed_point_timestamp_seconds{%(projectAddon)s}' % f, 'northflank_addon_restore_drill_interval_seconds{%(projectAddon)s}' % f, '(time() - northflank_addon_restore_last_completed_timestamp_seconds{%(projectAddon)s} > bool northflank_addon_restore_drill_interval_seconds{%(projectAddon)s}) or on (account, project, addon) (northflank_addon_restore_drill_interval_seconds{%(projectAddon)s} * 0 + 1 unless on (account, project, addon) northflank_addon_restore_last_completed_timestamp_seconds{%(projectAddon)s})' % f, 'time() - northflank_addon_restore_last_failed_timestamp_seconds{%(projectAddon)s}' % f, 'northflank_addon_restore_running_seconds{%(projectAddon)s}' % f], exclude={ Time: true, __name__: true, job: true, instance: true }, rename={ 'Value #A': 'Last completed restore, age', 'Value #B': 'Point restored, age', 'Value #C': 'Drill every', 'Value #D': 'Drill', 'Value #E': 'Last failure, age', 'Value #F': 'Running for' }, unit='s', overrides=[{ matcher: { id: 'byName', options: 'Drill' }, properties: [{ id: 'unit', value: 'short' }, { id: 'mappings', value: [{ type: 'value', options: { '0': { text: 'on time', color: 'green' }, '1': { text: 'overdue', color: 'red' } } }] }, { id: 'custom.cellOptions', value: { type: 'color-text' } }] }], options={ showHeader: true }) + p.size(14, 10),
          p.timeseries('Failed and aborted restores, and restores running', 'The failed and aborted restores each addon lists (a step up is a new failure), and how long a restore has been seen running (RestoreStuck fires past 6 h).', [p.series('sum by (project, addon) (northflank_addon_restores{%(projectAddon)s,status=~"failed|aborted"})' % f, '{{project}}/{{addon}} failed or aborted'), p.series('northflank_addon_restore_running_seconds{%(projectAddon)s} / 3600' % f, '{{project}}/{{addon}} running, hours')], unit='short', options={ legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } }) + p.size(10, 10),
        ]),
      },
  },
}
