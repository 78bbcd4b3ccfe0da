import { describe, expect, it } from "vitest";
import { barChartSvg, histogramSvg, renderReport } from "./report.js";

describe("report", () => {
  it("draws one bar per layer, scaled to the largest value, and escapes labels", () => {
    const svg = barChartSvg([
      { label: "model.layers.0.mlp.down_proj", value: 2 },
      { label: "<b>", value: 1 },
    ]);
    expect(svg.match(/<rect /g)).toHaveLength(2);
    expect(svg).toContain('width="420.0"');
    expect(svg).toContain('width="210.0"');
    expect(svg).toContain("&#60;b&#62;");
  });

  it("histogram counts every finite value once", () => {
    const svg = histogramSvg([0, 0.5, 1, 1, Number.NaN], { bins: 2 });
    const counts = [...svg.matchAll(/<title>(\d+)<\/title>/g)].map((m) => Number(m[1]));
    expect(counts).toEqual([1, 3]);
  });

  it("renders a standalone HTML page", () => {
    const html = renderReport("t", { ppl: 1.5, ref: null }, [{ title: "s", table: { head: ["a"], rows: [["x"]] } }]);
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).toContain("<td>1.500</td>");
    expect(html).toContain("<td>—</td>");
  });
});
