// Self-contained HTML reports with inline SVG plots (no scripts, no network): per-layer quantization error for
// `quantize`, KL-divergence distribution for `eval`.

// ----- model -----

export interface BarDatum {
  readonly label: string;
  readonly value: number;
}

export interface ReportSection {
  readonly title: string;
  readonly note?: string;
  readonly svg?: string;
  readonly table?: { readonly head: ReadonlyArray<string>; readonly rows: ReadonlyArray<ReadonlyArray<string | number>> };
}

// ----- rendering -----

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const fmtNum = (v: number): string =>
  !Number.isFinite(v) || (Number.isInteger(v) && Math.abs(v) < 1e9) ? String(v) : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toPrecision(4);

/** Horizontal bar chart, one bar per datum, optionally on a log scale. */
export const barChartSvg = (data: ReadonlyArray<BarDatum>, opts: { readonly unit?: string; readonly log?: boolean } = {}): string => {
  const rowH = 16;
  const labelW = 280;
  const plotW = 420;
  const h = data.length * rowH + 30;
  const vals = data.map((d) => d.value).filter((v) => Number.isFinite(v) && (!opts.log || v > 0));
  const max = vals.length ? Math.max(...vals) : 1;
  const min = opts.log && vals.length ? Math.min(...vals) : 0;
  const scale = (v: number): number => {
    if (!Number.isFinite(v) || max <= 0) return 0;
    if (opts.log) {
      if (v <= 0) return 0;
      const lo = Math.log10(min) - 0.5;
      return Math.max(2, ((Math.log10(v) - lo) / (Math.log10(max) - lo)) * plotW);
    }
    return (v / max) * plotW;
  };
  const bars = data
    .map((d, i) => {
      const y = i * rowH + 4;
      const w = scale(d.value);
      return (
        `<text x="${labelW - 6}" y="${y + 11}" text-anchor="end" font-size="11">${esc(d.label)}</text>` +
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 4}" fill="#4c78a8"/>` +
        `<text x="${labelW + w + 4}" y="${y + 11}" font-size="10" fill="#333">${fmtNum(d.value)}</text>`
      );
    })
    .join("");
  const axis = `<text x="${labelW}" y="${h - 6}" font-size="10" fill="#666">${opts.log ? "log scale" : "linear scale"}${opts.unit ? `, ${esc(opts.unit)}` : ""}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 90}" height="${h}" font-family="sans-serif">${bars}${axis}</svg>`;
};

/** Histogram of values into `bins` equal-width bins on [0, max]. */
export const histogramSvg = (values: ReadonlyArray<number>, opts: { readonly bins?: number; readonly xLabel?: string } = {}): string => {
  const bins = opts.bins ?? 40;
  const w = 640;
  const h = 220;
  const finite = values.filter(Number.isFinite);
  const max = finite.length ? finite.reduce((m, v) => (v > m ? v : m), Number.NEGATIVE_INFINITY) : 1;
  const counts = new Array<number>(bins).fill(0);
  for (const v of finite) counts[Math.min(bins - 1, Math.floor((v / (max || 1)) * bins))]!++;
  const cmax = Math.max(1, ...counts);
  const bw = (w - 60) / bins;
  const rects = counts
    .map((c, i) => {
      const bh = (c / cmax) * (h - 50);
      return `<rect x="${(50 + i * bw).toFixed(1)}" y="${(h - 30 - bh).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="#f58518"><title>${c}</title></rect>`;
    })
    .join("");
  const labels =
    `<text x="50" y="${h - 12}" font-size="10">0</text>` +
    `<text x="${w - 10}" y="${h - 12}" font-size="10" text-anchor="end">${fmtNum(max)}</text>` +
    `<text x="${w / 2}" y="${h - 2}" font-size="11" text-anchor="middle">${esc(opts.xLabel ?? "")}</text>` +
    `<text x="10" y="20" font-size="10">${cmax}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif">${rects}${labels}</svg>`;
};

export const renderReport = (title: string, summary: Readonly<Record<string, string | number | null>>, sections: ReadonlyArray<ReportSection>): string => {
  const kv = Object.entries(summary)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v === null ? "—" : esc(typeof v === "number" ? fmtNum(v) : v)}</td></tr>`)
    .join("");
  const body = sections
    .map((s) => {
      const table = s.table
        ? `<table><thead><tr>${s.table.head.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>${s.table.rows
            .map((r) => `<tr>${r.map((c) => `<td>${esc(typeof c === "number" ? fmtNum(c) : c)}</td>`).join("")}</tr>`)
            .join("")}</tbody></table>`
        : "";
      return `<section><h2>${esc(s.title)}</h2>${s.note ? `<p>${esc(s.note)}</p>` : ""}${s.svg ?? ""}${table}</section>`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ddd;padding:2px 8px;text-align:left;font-size:13px}th{background:#f4f4f4}h1{font-size:22px}h2{font-size:17px;margin-top:1.5em}</style>
</head><body><h1>${esc(title)}</h1><table>${kv}</table>
${body}
<p style="color:#888;font-size:12px">generated by llmq</p></body></html>
`;
};
