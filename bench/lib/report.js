// bench/lib/report.js — turns target results into tables: one per report table (a backend, or a micro-benchmark's
// own table), rows = metrics, columns = targets, then ratio columns, and a peak-RSS row. Rendered for the terminal
// (aligned, coloured when chalk is present and stdout is a TTY) and as Markdown. Also: the issue 9 targets table
// (issueTargets), the engine-against-engine verdict per backend and preset (engineComparison), and the FUSE
// requests per operation of every fsx target (requestsTables).
//
// Ratio X/Y is "how many times better X is than Y": Y/X for times (s) and peak RSS, X/Y for MiB/s, IOPS and
// ops/s. So > 1 always means X is better (faster, or leaner). Ratio columns: every kernel-engine fsx target
// against raw and each peer, and against its fuse-native twin (same preset), e.g. `bal/bal-fn`: the engine alone.
// A fuse-native target without a kernel twin in the run is compared with raw and the peers itself.

export const RATIO_NOTE =
  'Ratio columns X/Y: how many times better X is than Y — Y÷X for seconds and RSS, X÷Y for MiB/s, IOPS and ops/s; ' +
  '>1 means X is better, <1 worse. `-fn` is the same preset on the fuse-native engine, so `bal/bal-fn` is what the ' +
  'kernel engine alone changes.';

/** Engine ratios inside ±NOISE of 1 count as "the same": the spread of repeated runs on the loaded 2-core machine. */
export const NOISE = 0.1;

const KIND_ORDER = { raw: 0, fsx: 1, peer: 2 };

/** The fuse-native twin of kernel-engine fsx target `x` among `cols` (same table, same preset), or undefined. */
function twinOf(x, cols) {
  return cols.find((r) => r.kind === 'fsx' && r.engineAsked === 'fuse-native' && r.preset === x.preset);
}

/** The ratio pairs [X, Y] of a table's columns (see the header comment). */
function ratioPairs(cols) {
  const refs = cols.filter((r) => r.kind !== 'fsx');
  const kernel = cols.filter((r) => r.kind === 'fsx' && r.engineAsked !== 'fuse-native');
  const lone = cols.filter((r) => r.kind === 'fsx' && r.engineAsked === 'fuse-native' &&
    !kernel.some((k) => k.preset === r.preset));
  const pairs = [];
  for (const x of kernel) {
    for (const y of refs) pairs.push([x, y]);
    const twin = twinOf(x, cols);
    if (twin) pairs.push([x, twin]);
  }
  for (const x of lone) for (const y of refs) pairs.push([x, y]);
  return pairs;
}

/** Build { table, header[], rows[][] (cells { text, tone }), ratioStart } per report table from target results. */
export function buildTables(results, metricDefs) {
  const names = [...new Set(results.map((r) => r.table ?? r.backend))];
  return names.map((table) => {
    const cols = results.filter((r) => (r.table ?? r.backend) === table)
      .map((r, i) => [r, i]).sort(([a, i], [b, j]) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || i - j)
      .map(([r]) => r);
    const pairs = ratioPairs(cols);
    const header = ['workload', ...cols.map((r) => r.name), ...pairs.map(([x, y]) => `${x.short}/${y.short}`)];
    const rows = [];
    // Only the rows some column of this table ran (a micro-benchmark's table has its own few).
    for (const def of metricDefs.filter((d) => cols.some((r) => r.metrics[d.id]))) {
      const cells = cols.map((r) => valueCell(r, r.metrics[def.id], def.unit));
      const ratios = pairs.map(([x, y]) => ratioCell(x.metrics[def.id], y.metrics[def.id], def.unit));
      rows.push([{ text: `${def.label} (${def.unit})` }, ...cells, ...ratios]);
    }
    if (cols.some((r) => r.kind !== 'raw')) {
      const rss = (r) => (r.peakRssKiB ? { status: 'ok', value: r.peakRssKiB / 1024 } : null);
      rows.push([
        { text: 'daemon peak RSS (MiB)' },
        ...cols.map((r) => (r.kind === 'raw' ? { text: '—' }
          : r.peakRssKiB ? { text: fmt(r.peakRssKiB / 1024, 'MiB') } : { text: r.status === 'ok' ? '?' : '—' })),
        ...pairs.map(([x, y]) => ratioCell(rss(x), rss(y), 'MiB')),
      ]);
    }
    return { table, backend: cols[0].backend, header, rows, cols, ratioStart: 1 + cols.length };
  });
}

/** Footnotes: failed/unavailable targets, failed steps, teardown notes. */
export function footnotes(results) {
  const out = [];
  for (const r of results) {
    if (r.status !== 'ok') out.push(`${r.name}: ${r.status === 'failed' ? 'FAILED' : 'not run'}: ${r.error}`);
    const skipped = new Map(); // reason → ids, so a cut-short group is one line, not one per row
    for (const [id, m] of Object.entries(r.metrics)) {
      if (m.status === 'error' || m.status === 'timeout') out.push(`${r.name} / ${id}: ${m.status}: ${m.error}`);
      if (m.status === 'skipped' && r.status === 'ok') skipped.set(m.error, [...(skipped.get(m.error) ?? []), id]);
    }
    for (const [why, ids] of skipped) out.push(`${r.name}: skipped ${ids.join(', ')}: ${why}`);
    for (const n of r.notes ?? []) out.push(`${r.name}: ${n}`);
  }
  return out;
}

/** Aligned plain/coloured text of one table; split in two (values, ratios) when wider than `width`. */
export function renderText(table, chalk, width = Infinity) {
  const all = table.header.map((_, i) => i);
  const full = renderCols(table, all, chalk);
  if (visibleWidth(full.split('\n')[0]) <= width || table.ratioStart >= table.header.length) return full;
  const values = all.slice(0, table.ratioStart);
  const ratios = [0, ...all.slice(table.ratioStart)];
  return `${renderCols(table, values, chalk)}\n\n${renderCols(table, ratios, chalk)}`;
}

/**
 * Markdown of one table; one wider than `maxCols` columns comes out as two tables, values then ratios (both
 * led by the workload column).
 */
export function renderMarkdown(table, maxCols = 12) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  const part = (idx) => {
    const out = [line(idx.map((i) => table.header[i])), line(idx.map((i) => (i === 0 ? ':--' : '--:')))];
    for (const row of table.rows) out.push(line(idx.map((i) => row[i].text)));
    return out.join('\n');
  };
  const all = table.header.map((_, i) => i);
  const rs = table.ratioStart ?? all.length;
  if (all.length <= maxCols || rs >= all.length) return part(all);
  return `${part(all.slice(0, rs))}\n\n${part([0, ...all.slice(rs)])}`;
}

function renderCols(table, idx, chalk) {
  const rows = [table.header.map((text, i) => ({ text, tone: i === 0 ? null : 'head' })), ...table.rows];
  const widths = idx.map((i) => Math.max(...rows.map((r) => r[i].text.length)));
  const paint = (cell) => {
    const c = chalk;
    switch (cell.tone) {
      case 'head': return c.bold(cell.text);
      case 'bad': return c.red(cell.text);
      case 'good': return c.green(cell.text);
      case 'meh': return c.yellow(cell.text);
      default: return cell.text;
    }
  };
  const lines = rows.map((r, ri) => idx.map((i, k) => {
    const cell = r[i];
    const pad = ' '.repeat(widths[k] - cell.text.length);
    const text = ri === 0 && i === 0 ? chalk.bold(cell.text) : paint(cell);
    return i === 0 ? text + pad : pad + text;
  }).join('  '));
  lines.splice(1, 0, widths.map((w) => '─'.repeat(w)).join('  '));
  return lines.join('\n');
}

function valueCell(r, m, unit) {
  if (r.status === 'failed') return { text: 'FAIL', tone: 'bad' };
  if (r.status === 'unavailable') return { text: 'n/a' };
  if (!m) return { text: '' };
  if (m.status === 'ok') {
    const dropped = m.detail?.cachesDropped === false ? '*' : '';
    return { text: fmt(m.value, unit) + dropped };
  }
  if (m.status === 'skipped') return { text: 'skip' };
  return { text: m.status, tone: 'bad' }; // error | timeout
}

const HIGHER_IS_BETTER = new Set(['MiB/s', 'IOPS', 'ops/s']);

/** X's advantage over Y for two metrics of `unit` (> 1: X better), or null when either is missing. */
export function ratioOf(x, y, unit) {
  if (!x || !y || x.status !== 'ok' || y.status !== 'ok' || !(x.value > 0) || !(y.value > 0)) return null;
  return HIGHER_IS_BETTER.has(unit) ? x.value / y.value : y.value / x.value;
}

function fmtRatio(ratio) {
  return ratio >= 10 ? ratio.toFixed(1) : ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2);
}

function ratioCell(x, y, unit) {
  const ratio = ratioOf(x, y, unit);
  if (ratio === null) return { text: '—' };
  const tone = ratio >= 1 ? 'good' : ratio >= 0.5 ? 'meh' : 'bad';
  return { text: fmtRatio(ratio), tone };
}

/** Format a value for a table cell: 3 significant digits for seconds, integers for big rates. */
export function fmt(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return '?';
  if (unit === 'IOPS' || unit === 'ops/s') return Math.round(v).toLocaleString('en-US');
  if (unit === 's') return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function visibleWidth(s) {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/**
 * Issue 9's benchmark targets, as a table: one row per target with the ratio of every fsx preset (kernel engine,
 * then fuse-native for comparison) against the reference the target names, and a status from the best
 * kernel-engine preset ("ratios in one run, local backend, best preset"). Rows whose data the run lacks say
 * `not measured`. Each row also carries `data` (for the JSON).
 */
export function issueTargets(results, metricDefs) {
  const local = results.filter((r) => r.backend === 'local' && r.status === 'ok');
  const main = local.filter((r) => (r.table ?? r.backend) === 'local');
  const micro = local.filter((r) => r.table === 'local-getattr');
  const raw = main.find((r) => r.kind === 'raw');
  const bindfs = main.find((r) => r.name === 'bindfs');
  const presets = [...new Set(local.filter((r) => r.kind === 'fsx').map((r) => r.preset))];
  const fsxOf = (set, preset, engine) => set.find((r) => r.kind === 'fsx' && r.preset === preset && r.engineAsked === engine);
  const SHORT = { balanced: 'bal', 'high-performance': 'hp', safe: 'safe' };
  const cols = [...presets.map((p) => [p, 'kernel']), ...presets.map((p) => [p, 'fuse-native'])];
  const header = ['target', 'needs', 'measured (best kernel preset)',
    ...cols.map(([p, e]) => `${SHORT[p] ?? p}${e === 'kernel' ? '' : '-fn'}`), 'status'];

  const specs = [
    ...[['seq-read-warm', 'warm sequential read'], ['seq-read-cold', 'cold sequential read']]
      .map(([id, label]) => ({ id, label, ref: 'raw', need: 0.9 })),
    ...[['randread-1j', '4K random read, 1 job'], ['randread-4j', '4K random read, 4 jobs'],
      ['randread-1j-direct', '4K random read, 1 job, O_DIRECT'], ['randread-4j-direct', '4K random read, 4 jobs, O_DIRECT']]
      .map(([id, label]) => ({ id, label, ref: 'raw', need: 0.8 })),
    { id: 'seq-write-fsync', label: 'write + fsync', ref: 'raw', need: 0.8 },
    { id: 'stat', label: 'stat of all small files', ref: 'raw', need: 0.9 },
    { id: 'ls-warm', label: 'warm ls -l', ref: 'raw', need: 0.9 },
    ...[['create', 'create'], ['rename', 'rename'], ['unlink', 'unlink'], ['untar', 'untar'], ['find', 'find (cold)'],
      ['tar-read', 'tar-read (cold)'], ['rm-rf', 'rm -rf']].map(([id, label]) => ({ id, label, ref: 'bindfs', need: 1.5 })),
    { id: 'getattr-1j', label: 'uncached getattr/s, 1 thread', ref: 'fuse-native', need: 3 },
    { id: 'rss', label: 'daemon peak RSS', ref: 'MiB', need: 120 },
  ];

  const rows = [];
  // Rows of workloads this run did not select are left out; a selected one that failed says `not measured`.
  const selected = new Set(metricDefs.map((d) => d.id));
  const hasMain = main.some((r) => r.kind === 'fsx');
  for (const spec of specs.filter((x) => (x.ref === 'MiB' ? hasMain : selected.has(x.id)))) {
    const unitOf = (r) => r?.metrics?.[spec.id]?.unit;
    let cells;
    let best = null; // { ratio, preset, text }
    if (spec.ref === 'MiB') {
      cells = cols.map(([p, e]) => {
        const r = fsxOf(main, p, e);
        const v = r?.peakRssKiB ? r.peakRssKiB / 1024 : null;
        if (v !== null && e === 'kernel' && (!best || v < best.value)) {
          best = { value: v, preset: p, ok: v <= spec.need, text: `${v.toFixed(0)} MiB (${SHORT[p] ?? p})` };
        }
        return v === null ? { text: '—' } : { text: `${v.toFixed(0)} MiB`, tone: v <= spec.need ? 'good' : 'bad' };
      });
    } else {
      const set = spec.ref === 'fuse-native' ? micro : main;
      cells = cols.map(([p, e]) => {
        const x = fsxOf(set, p, e);
        const y = spec.ref === 'raw' ? raw : spec.ref === 'bindfs' ? bindfs : e === 'kernel' ? fsxOf(set, p, 'fuse-native') : null;
        const unit = unitOf(x) ?? unitOf(y);
        const ratio = ratioOf(x?.metrics[spec.id], y?.metrics[spec.id], unit);
        if (ratio === null) return { text: '—' };
        if (e === 'kernel' && (!best || ratio > best.ratio)) {
          const vx = fmt(x.metrics[spec.id].value, unit);
          const vy = fmt(y.metrics[spec.id].value, unit);
          best = { ratio, preset: p, ok: ratio >= spec.need, text: `${fmtRatio(ratio)}× (${SHORT[p] ?? p}: ${vx} vs ${vy} ${unit})` };
        }
        return { text: fmtRatio(ratio), tone: ratio >= spec.need ? 'good' : ratio >= spec.need / 2 ? 'meh' : 'bad' };
      });
    }
    const need = spec.ref === 'MiB' ? `≤ ${spec.need} MiB` : `≥ ${spec.need}× ${spec.ref}`;
    const status = best === null ? { text: 'not measured' } : best.ok ? { text: 'met', tone: 'good' } : { text: 'not yet', tone: 'bad' };
    rows.push(Object.assign([{ text: spec.label }, { text: need }, { text: best?.text ?? '—' }, ...cells, status], {
      data: {
        id: spec.id, target: spec.label, needs: need, status: status.text, best: best && { ...best },
        byTarget: Object.fromEntries(cols.map(([p, e], i) => [`${p}/${e}`, cells[i].text])),
      },
    }));
  }
  const measured = rows.some((r) => r.data.status !== 'not measured');
  return { table: 'issue 9 targets', header, rows: measured ? rows : [], ratioStart: header.length };
  // NB: ratioStart = all columns, so renderMarkdown never splits this table.
}

/**
 * Kernel engine against fuse-native, per table and preset: which workloads got faster, stayed within ±NOISE, or
 * got slower with the engine alone changed. One entry per (table, preset) with both engines: { table, preset,
 * faster[], same[], slower[] (each { id, label, ratio }), summary }.
 */
export function engineComparison(results, metricDefs) {
  const out = [];
  const tables = [...new Set(results.map((r) => r.table ?? r.backend))];
  for (const table of tables) {
    const cols = results.filter((r) => (r.table ?? r.backend) === table && r.status === 'ok');
    for (const k of cols.filter((r) => r.kind === 'fsx' && r.engineAsked === 'kernel')) {
      const fn = twinOf(k, cols);
      if (!fn) continue;
      const c = { table, preset: k.preset, faster: [], same: [], slower: [] };
      for (const def of metricDefs) {
        const ratio = ratioOf(k.metrics[def.id], fn.metrics[def.id], def.unit);
        if (ratio === null) continue;
        const item = { id: def.id, label: def.label, ratio: Number(ratio.toFixed(3)) };
        (ratio > 1 + NOISE ? c.faster : ratio < 1 - NOISE ? c.slower : c.same).push(item);
      }
      const n = c.faster.length + c.same.length + c.slower.length;
      const list = (xs) => xs.map((x) => `${x.label} ${fmtRatio(x.ratio)}`).join(', ');
      c.summary = `${table}, ${k.preset}: kernel vs fuse-native on ${n} workloads — ${c.faster.length} faster, ` +
        `${c.same.length} within ±${NOISE * 100}%, ${c.slower.length} slower` +
        (c.slower.length ? ` (${list(c.slower)})` : '') + '.';
      out.push(c);
    }
  }
  return out;
}

/**
 * FUSE requests per operation of every fsx target, per table: rows = metrics, cells = "4: create 1, flush 1…;
 * backend 3" (total requests per op, the biggest opcodes, then fsx's backend calls per op); per MiB for the data
 * rows that count no operations.
 */
export function requestsTables(results, metricDefs) {
  const out = [];
  const tables = [...new Set(results.map((r) => r.table ?? r.backend))];
  for (const table of tables) {
    const cols = results.filter((r) => (r.table ?? r.backend) === table && r.kind === 'fsx' && r.status === 'ok');
    if (!cols.length) continue;
    const rows = [];
    for (const def of metricDefs.filter((d) => cols.some((r) => r.metrics[d.id]?.detail?.requestsPerOp))) {
      const cells = cols.map((r) => {
        const d = r.metrics[def.id]?.detail;
        if (!d?.requestsPerOp) return { text: '—' };
        const entries = Object.entries(d.requestsPerOp).sort((a, b) => b[1] - a[1]);
        const total = entries.reduce((a, [, v]) => a + v, 0);
        const n = (v) => (v >= 10 ? v.toFixed(0) : v >= 0.1 ? v.toFixed(2).replace(/\.?0+$/, '') : v.toPrecision(1));
        const be = d.backendRequestsPerOp !== undefined ? `; backend ${n(d.backendRequestsPerOp)}` : '';
        return { text: `${n(total)}: ${entries.slice(0, 4).map(([k, v]) => `${k} ${n(v)}`).join(', ')}${be}` };
      });
      const per = cols.some((r) => r.metrics[def.id]?.detail?.requestsPer === 'MiB') ? ' per MiB' : ' per op';
      rows.push([{ text: `${def.label}${per}` }, ...cells]);
    }
    if (rows.length) out.push({ table, header: ['workload', ...cols.map((r) => r.name)], rows, ratioStart: 1 + cols.length });
  }
  return out;
}

/** "raw 1.2–1.5, fsx-balanced 3.1–4.0, …": each target's 1-minute load average at its start and end. */
export function loadSummary(results) {
  return results.filter((r) => r.load?.start).map((r) =>
    `${r.name} ${r.load.start[0].toFixed(1)}→${r.load.end?.[0]?.toFixed(1) ?? '?'}`).join(', ');
}
