// Small helpers for the dashboard's panels, in plain jsonnet (Grafonnet is not vendored here).
// A panel is made without a place; `layout` gives each its id and position, left to right.
local datasource = { type: 'prometheus', uid: '${datasource}' };
local refIds = 'ABCDEFGHIJ';

local withRefIds(targets) = [
  targets[n] { datasource: datasource, refId: refIds[n] }
  for n in std.range(0, std.length(targets) - 1)
];

local instant(expr, format) = {
  expr: expr,
  legendFormat: '__auto',
  range: false,
  instant: true,
  format: format,
};

{
  size(w, h):: { gridPos: { w: w, h: h } },

  row(title):: { type: 'row', title: title, collapsed: false, panels: [] } + self.size(24, 1),

  // A range query drawn as a line per series, named by `legend`.
  series(expr, legend):: {
    expr: expr,
    legendFormat: legend,
    range: true,
    instant: false,
    format: 'time_series',
  },

  stat(title, description, expr, unit, steps):: {
    type: 'stat',
    title: title,
    description: description,
    datasource: datasource,
    targets: withRefIds([instant(expr, 'time_series')]),
    fieldConfig: {
      defaults: { unit: unit, thresholds: { mode: 'absolute', steps: steps } },
      overrides: [],
    },
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'background',
      graphMode: 'none',
      textMode: 'value',
    },
  },

  timeseries(title, description, targets, unit, custom=null, options=null):: {
    type: 'timeseries',
    title: title,
    description: description,
    datasource: datasource,
    targets: withRefIds(targets),
    fieldConfig: {
      defaults: { unit: unit } + (if custom == null then {} else { custom: custom }),
      overrides: [],
    },
    options: if options != null then options else {
      legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull'] },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  },

  // Instant queries merged into one row per series; `rename` names their value columns.
  table(title, description, exprs, exclude, rename, unit, overrides, options):: {
    type: 'table',
    title: title,
    description: description,
    datasource: datasource,
    targets: withRefIds([instant(expr, 'table') for expr in exprs]),
    transformations: [
      { id: 'merge', options: {} },
      { id: 'organize', options: { excludeByName: exclude, renameByName: rename } },
    ],
    fieldConfig: { defaults: { unit: unit }, overrides: overrides },
    options: options,
  },

  // Ids from 2, and positions: each panel right of the one before, on a new line when it does
  // not fit in the 24 columns; a row always starts a line.
  layout(panels)::
    local place(state, panel) =
      local w = panel.gridPos.w;
      local h = panel.gridPos.h;
      local wrap = panel.type == 'row' || state.x + w > 24;
      local x = if wrap then 0 else state.x;
      local y = if wrap then state.y + state.h else state.y;
      {
        x: x + w,
        y: y,
        h: if wrap then h else std.max(state.h, h),
        out: state.out + [panel { id: std.length(state.out) + 2, gridPos+: { x: x, y: y } }],
      };
    std.foldl(place, panels, { x: 0, y: 0, h: 0, out: [] }).out,

  // A dashboard variable over one label of a query's series; "All" by default.
  variable(name, label, selector, labelName):: {
    local definition = 'label_values(%s, %s)' % [selector, labelName],
    name: name,
    label: label,
    type: 'query',
    datasource: datasource,
    query: { query: definition, refId: name + '-query' },
    definition: definition,
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    sort: 1,
    options: [],
  },
}
