// A _config unlike the default in every value that tuned.test.yaml judges: the rules rendered
// with it must fire where the default's would not, and stay quiet for another cluster's series.
{
  selector: 'job="x", cluster="y"',
  pollStaleSeconds: 1800,
  rateLimitRemaining: 500,
  sizeDropRatio: 0.8,
  restoreStuckSeconds: 3600,
  keepFiringFor: '30m',
  runbookURLPattern: 'https://runbooks.example/%s',
  ruleOverrides: { NorthflankBackupDestinationDown: { 'for': '5m' } },
}
