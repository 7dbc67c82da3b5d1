// bench/lib/report.js — turns target results into tables: one per backend, rows = metrics, columns = targets,
// then ratio columns of each fsx preset against raw and each peer, and a peak-RSS row. Rendered for the terminal
// (aligned, coloured when chalk is present and stdout is a TTY) and as Markdown.
//
// Ratio X/Y (X an fsx preset, Y raw or a peer) is "how many times better X is than Y": Y/X for times (s) and
// peak RSS, X/Y for MiB/s and IOPS. So > 1 always means fsx is better (faster, or leaner).

export const RATIO_NOTE =
  'Ratio columns X/Y: how many times better fsx preset X is than Y — Y÷X for seconds and RSS, X÷Y for MiB/s and ' +
  'IOPS; >1 means fsx is better, <1 means worse.';

const KIND_ORDER = { raw: 0, fsx: 1, peer: 2 };

/** Build { backend, header[], rows[][] (cells { text, tone }) } per backend from target results. */
export function buildTables(results, metricDefs) {
  const backends = [...new Set(results.map((r) => r.backend))];
  return backends.map((backend) => {
    const cols = results.filter((r) => r.backend === backend)
      .map((r, i) => [r, i]).sort(([a, i], [b, j]) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || i - j)
      .map(([r]) => r);
    const fsx = cols.filter((r) => r.kind === 'fsx');
    const refs = cols.filter((r) => r.kind !== 'fsx');
    const pairs = fsx.flatMap((x) => refs.map((y) => [x, y]));
    const header = ['workload', ...cols.map((r) => r.name), ...pairs.map(([x, y]) => `${x.short}/${y.short}`)];
    const rows = [];
    for (const def of metricDefs) {
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
    return { backend, header, rows, cols, ratioStart: 1 + cols.length };
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

/** Markdown of one table. */
export function renderMarkdown(table) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  const out = [line(table.header), line(table.header.map((_, i) => (i === 0 ? ':--' : '--:')))];
  for (const row of table.rows) out.push(line(row.map((c) => c.text)));
  return out.join('\n');
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

function ratioCell(x, y, unit) {
  if (!x || !y || x.status !== 'ok' || y.status !== 'ok' || !(x.value > 0) || !(y.value > 0)) return { text: '—' };
  const higherIsBetter = unit === 'MiB/s' || unit === 'IOPS';
  const ratio = higherIsBetter ? x.value / y.value : y.value / x.value;
  const tone = ratio >= 1 ? 'good' : ratio >= 0.5 ? 'meh' : 'bad';
  const text = ratio >= 10 ? ratio.toFixed(1) : ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2);
  return { text, tone };
}

/** Format a value for a table cell: 3 significant digits for seconds, integers for big rates. */
export function fmt(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return '?';
  if (unit === 'IOPS') return Math.round(v).toLocaleString('en-US');
  if (unit === 's') return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function visibleWidth(s) {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}
