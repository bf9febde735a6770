/** The table on stdout, the JSON under bench/results/, and the SVG chart of ratios the README shows. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadResult } from './load.ts';

export interface Row { id: string; label: string; result?: LoadResult; na?: string }
/** A goal's measurement; `reference`: a measured bound shown beside the goal, held to nothing. */
export interface Goal { n: number; what: string; value: number | undefined; min?: number; max?: number; unit: string; na?: string | undefined; reference?: boolean }
export interface Report {
  timestamp: string; mode: string; seconds: number; rounds: number; connections: number; generator: string;
  machine: Record<string, unknown>; rows: Row[]; goals: Goal[]; [extra: string]: unknown;
}

const RESULTS = join(import.meta.dirname, '..', 'results');

export function verdict(g: Goal): 'pass' | 'FAIL' | 'n/a' | 'reference' {
  if (g.reference) return 'reference';
  if (g.value === undefined || Number.isNaN(g.value)) return 'n/a';
  if (g.min !== undefined && g.value < g.min) return 'FAIL';
  if (g.max !== undefined && g.value > g.max) return 'FAIL';
  return 'pass';
}

const fmt = (v: number | undefined, unit: string) => v === undefined ? '—' : !Number.isFinite(v) ? `∞ ${unit}` : unit === '×' ? `${v.toFixed(2)}×` : `${v.toFixed(unit === 'entries' ? 0 : 1)} ${unit}`;
const bound = (v: number, unit: string) => `${Number(v.toFixed(2))}${unit === '×' ? '×' : ` ${unit}`}`;
const goalText = (g: Goal) => g.reference ? '—' : g.min !== undefined ? `≥ ${bound(g.min, g.unit)}` : g.max !== undefined ? `≤ ${bound(g.max, g.unit)}` : '—';

/** `name`: a partial run (`--served`) writes `<name>.json`, not latest.json and the chart of a full run. */
export function report(r: Report, options: { name?: string } = {}): void {
  const pad = (s: string, n: number) => s.length >= n ? s : s + ' '.repeat(n - s.length);
  const lpad = (s: string, n: number) => s.length >= n ? s : ' '.repeat(n - s.length) + s;
  console.log(`\nMachine: ${r.machine.nproc} cores, ${r.machine.cpu}, ${r.machine.memory}, Node ${r.machine.node}; ${r.generator}, ${r.connections} connections, ${r.seconds} s × ${r.rounds} round(s)\n`);
  console.log(`${pad('line', 56)} ${lpad('req/s', 9)} ${lpad('p50 ms', 8)} ${lpad('p99 ms', 8)} ${lpad('CPU µs/req', 11)}`);
  console.log('-'.repeat(96));
  for (const row of r.rows) {
    if (!row.result) { console.log(`${pad(row.label, 56)} ${row.na ?? 'n/a'}`); continue; }
    const x = row.result;
    console.log(`${pad(row.label, 56)} ${lpad(Math.round(x.rps).toString(), 9)} ${lpad(x.p50.toFixed(2), 8)} ${lpad(x.p99.toFixed(2), 8)} ${lpad(x.cpuUs === undefined ? '—' : x.cpuUs.toFixed(1), 11)}`);
  }
  console.log(`\n${pad('goal', 4)} ${pad('what', 76)} ${lpad('measured', 11)} ${lpad('goal', 10)}  result`);
  console.log('-'.repeat(114));
  for (const g of r.goals) {
    console.log(`${pad(String(g.n), 4)} ${pad(g.what, 76)} ${lpad(fmt(g.value, g.unit), 11)} ${lpad(goalText(g), 10)}  ${verdict(g)}${g.na ? `  (${g.na})` : ''}`);
  }
  mkdirSync(RESULTS, { recursive: true });
  const json = JSON.stringify({ ...r, goals: r.goals.map((g) => ({ ...g, result: verdict(g) })) }, null, 2) + '\n';
  writeFileSync(join(RESULTS, `${r.timestamp.replace(/[:.]/g, '-')}.json`), json);
  if (options.name) {
    writeFileSync(join(RESULTS, `${options.name}.json`), json);
    console.log(`\nwrote bench/results/${options.name}.json and bench/results/${r.timestamp.replace(/[:.]/g, '-')}.json`);
    return;
  }
  writeFileSync(join(RESULTS, 'latest.json'), json);
  writeFileSync(join(RESULTS, 'ratios.svg'), svg(r));
  console.log(`\nwrote bench/results/latest.json, bench/results/${r.timestamp.replace(/[:.]/g, '-')}.json and bench/results/ratios.svg`);
}

/** Horizontal bars on a log scale (0.1× … 100×), a tick at each goal; hand-written SVG. */
export function svg(r: Report): string {
  const ratios = r.goals.filter((g) => g.unit === '×');
  const W = 900, left = 430, barW = W - left - 30, rowH = 34, top = 50;
  const H = top + ratios.length * rowH + 40;
  const x = (v: number) => left + Math.max(0, Math.min(1, (Math.log10(v) + 1) / 3)) * barW;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">mimir-auth-hub: throughput ratio to baseline (log scale; tick = goal; grey = reference)</text>`,
    `<text x="10" y="40" fill="#555" font-size="11">${esc(`${r.timestamp} · ${r.machine.nproc} cores ${r.machine.cpu} · ${r.generator} · ${r.mode}`)}</text>`,
  ];
  for (const v of [0.1, 1, 10, 100]) {
    out.push(`<line x1="${x(v)}" y1="${top - 4}" x2="${x(v)}" y2="${H - 30}" stroke="#ddd"/>`, `<text x="${x(v)}" y="${H - 14}" text-anchor="middle" fill="#555">${v}×</text>`);
  }
  ratios.forEach((g, i) => {
    const y = top + i * rowH;
    const result = verdict(g);
    out.push(`<text x="${left - 8}" y="${y + 18}" text-anchor="end">${esc(g.what)}</text>`);
    if (g.value === undefined) {
      out.push(`<text x="${left + 4}" y="${y + 18}" fill="#888">n/a</text>`);
    } else {
      const color = result === 'reference' ? '#78909c' : result === 'pass' ? '#2e7d32' : '#c62828';
      out.push(`<rect x="${left}" y="${y + 6}" width="${Math.max(1, x(g.value) - left)}" height="18" fill="${color}" opacity="0.85"/>`);
      out.push(`<text x="${x(g.value) + 4}" y="${y + 19}" fill="#222">${g.value.toFixed(2)}×</text>`);
    }
    if (g.reference) return;
    const goal = g.min ?? g.max ?? 1;
    out.push(`<line x1="${x(goal)}" y1="${y + 2}" x2="${x(goal)}" y2="${y + 28}" stroke="#000" stroke-width="2"/>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
