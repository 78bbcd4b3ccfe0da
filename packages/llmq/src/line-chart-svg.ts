// A line plot as inline SVG for the HTML reports (the training loss curve): no scripts, no network.

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const tick = (v: number): string => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toPrecision(3));

/** y against its index (0-based), axes labelled, the y range padded by 5 %; non-finite values are skipped. */
export const lineChartSvg = (ys: ReadonlyArray<number>, opts: { readonly xLabel?: string; readonly yLabel?: string } = {}): string => {
  const [w, h, left, bottom, top, right] = [640, 300, 64, 40, 12, 16];
  const finite = ys.filter(Number.isFinite);
  if (finite.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="40"><text x="8" y="24">no finite values</text></svg>`;
  // A fold, not Math.min(...finite): one value per training step would overflow the argument stack.
  const lo = finite.reduce((m, v) => (v < m ? v : m), Number.POSITIVE_INFINITY);
  const hi = finite.reduce((m, v) => (v > m ? v : m), Number.NEGATIVE_INFINITY);
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
  const [y0, y1] = [lo - pad, hi + pad];
  const px = (i: number) => left + (ys.length <= 1 ? 0 : (i / (ys.length - 1)) * (w - left - right));
  const py = (v: number) => top + (1 - (v - y0) / (y1 - y0)) * (h - top - bottom);
  const pts = ys.flatMap((v, i) => (Number.isFinite(v) ? [`${px(i).toFixed(1)},${py(v).toFixed(1)}`] : [])).join(" ");
  const yTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => y0 + f * (y1 - y0));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="11">`,
    `<line x1="${left}" y1="${h - bottom}" x2="${w - right}" y2="${h - bottom}" stroke="#444"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}" stroke="#444"/>`,
    ...yTicks.map((v) => `<text x="${left - 4}" y="${py(v) + 4}" text-anchor="end">${tick(v)}</text><line x1="${left}" y1="${py(v)}" x2="${w - right}" y2="${py(v)}" stroke="#eee"/>`),
    `<text x="${left}" y="${h - bottom + 14}">0</text><text x="${w - right}" y="${h - bottom + 14}" text-anchor="end">${ys.length - 1}</text>`,
    `<text x="${(left + w - right) / 2}" y="${h - 8}" text-anchor="middle">${esc(opts.xLabel ?? "")}</text>`,
    `<text x="12" y="${(top + h - bottom) / 2}" transform="rotate(-90 12 ${(top + h - bottom) / 2})" text-anchor="middle">${esc(opts.yLabel ?? "")}</text>`,
    `<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="${pts}"/>`,
    "</svg>",
  ].join("");
};
