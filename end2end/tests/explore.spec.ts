import { test, expect } from '@playwright/test';
import { collectErrors, firstDemoMetric, gotoHydrated } from './helpers';

// Series are drawn as 2-pixel polylines (single points as circles); the grid uses 1-pixel ones.
const plotted = '.chart-svg svg polyline[stroke-width="2"], .chart-svg svg circle';

/** Labels as the chart's legend writes them: `{a="1",b="x"}`, sorted, without __name__. */
function promLabels(metric: Record<string, string>): string {
  const pairs = Object.keys(metric)
    .filter((k) => k !== '__name__')
    .sort()
    .map((k) => `${k}="${metric[k].replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
  return pairs.length ? `{${pairs.join(',')}}` : '';
}

/** A read-out value (`12.34k`, `0.5`, `3M`) as a number, and half its last shown digit. */
function parseShown(text: string): [number, number] {
  const m = /^(-?\d+)(?:\.(\d+))?([kMGT]?)$/.exec(text);
  expect(m, `a read-out value: ${text}`).toBeTruthy();
  const scale = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m![3] as '' | 'k' | 'M' | 'G' | 'T'];
  const decimals = m![2]?.length ?? 0;
  const number = Number(`${m![1]}${decimals ? '.' + m![2] : ''}`) * scale;
  return [number, 0.5 * 10 ** -decimals * scale * (1 + 1e-9)];
}

test('explore: pick a metric, hover reads out values, drag zooms into a narrower span', async ({ page }) => {
  const errors = collectErrors(page);
  await gotoHydrated(page, '/explore');

  const metric = await firstDemoMetric(page);
  await page.selectOption('select.metric-select', metric);
  await expect(page).toHaveURL(new RegExp(`metric=${metric}`));
  // Attached, not visible: a constant series (PromQL's lookback fills its gaps) is a flat
  // polyline, whose empty bounding box Playwright counts as hidden.
  await expect(page.locator(plotted).first()).toBeAttached();
  await expect(page.locator('.legend-item').first()).toBeVisible();

  const summary = page.locator('.chart-summary');
  const before = {
    start: Number(await summary.getAttribute('data-start')),
    end: Number(await summary.getAttribute('data-end')),
  };
  expect(before.end).toBeGreaterThan(before.start);

  // Hover over the middle of where data was drawn: a vertical line and a read-out appear.
  const overlay = page.locator('.chart-overlay');
  const box = (await overlay.boundingBox())!;
  const extent = await page.locator('.chart-svg svg').evaluate((svg) => {
    const width = Number(svg.getAttribute('width'));
    const xs = Array.from(svg.querySelectorAll('polyline[stroke-width="2"]'))
      .flatMap((p) => (p.getAttribute('points') ?? '').trim().split(/\s+/))
      .concat(Array.from(svg.querySelectorAll('circle')).map((c) => `${c.getAttribute('cx')},0`))
      .map((xy) => Number(xy.split(',')[0]))
      .filter((x) => Number.isFinite(x));
    return { width, min: Math.min(...xs), max: Math.max(...xs) };
  });
  const scale = box.width / extent.width;
  const y = box.y + box.height / 2;
  const mid = box.x + ((extent.min + extent.max) / 2) * scale;
  await page.mouse.move(mid, y);
  const readout = page.locator('.chart-readout');
  await expect(readout).toBeVisible();
  await expect(page.locator('.chart-hover-line')).toBeVisible();
  await expect(readout.locator('.readout-time')).toHaveText(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
  await expect(readout.locator('.readout-value').first()).toHaveText(/^-?\d+(\.\d+)?[kMGT]?$/);

  // The read-out shows the data, not just something shaped like a number: every row's value
  // is what /api/v1/query_range answers for the chart's query, range and step (the chart runs
  // the same PromQL engine); the builder drew the metric as its kind says.
  const shown = await readout.locator('.readout-row').evaluateAll((rows) =>
    rows.map((r) => ({
      label: r.querySelector('.readout-label')!.textContent!.trim(),
      value: r.querySelector('.readout-value')!.textContent!.trim(),
      time: r.querySelector('.readout-value')!.getAttribute('title')!,
    })),
  );
  expect(shown.length).toBeGreaterThan(0);
  const range = {
    start: Number(await summary.getAttribute('data-start')),
    end: Number(await summary.getAttribute('data-end')),
    step: Number(await summary.getAttribute('data-step')),
  };
  const query = await page.locator('input.selector-input').inputValue();
  if (/_(total|count|sum)$/.test(metric)) expect(query).toBe(`rate(${metric}[5m])`);
  if (/_bucket$/.test(metric)) expect(query).toContain('histogram_quantile(0.95');
  const api = await page.request.get('/api/v1/query_range', {
    params: { query, start: String(range.start / 1000), end: String(range.end / 1000), step: String(range.step / 1000) },
  });
  expect(api.ok(), await api.text()).toBeTruthy();
  const result: { metric: Record<string, string>; values: [number, string][] }[] = (await api.json()).data.result;
  for (const row of shown) {
    const series = result.find((r) => promLabels(r.metric) === row.label || r.metric.__name__ === row.label
      || `${r.metric.__name__ ?? ''}${promLabels(r.metric)}` === row.label);
    expect(series, `series ${row.label} in ${JSON.stringify(result.map((r) => r.metric))}`).toBeTruthy();
    const at = Date.parse(row.time.replace(' UTC', 'Z').replace(' ', 'T')) / 1000;
    // The read-out's time is shown to the second; the evaluation times keep the range's ms.
    const point = series!.values.find(([t]) => t - at >= 0 && t - at < 1);
    expect(point, `a point at ${row.time} for ${row.label}`).toBeTruthy();
    const [value, tolerance] = parseShown(row.value);
    expect(Math.abs(Number(point![1]) - value), `${row.label} at ${row.time}: shown ${row.value}, answered ${point![1]}`)
      .toBeLessThanOrEqual(tolerance);
  }

  // Drag across the middle of the data: a selection box shows while dragging, then the URL
  // and the displayed range narrow to a span inside the previous one.
  const svgBefore = await page.locator('.chart-svg').innerHTML();
  const width = Math.max(extent.max - extent.min, 60);
  const x1 = box.x + (extent.min + width * 0.25) * scale;
  const x2 = box.x + (extent.min + width * 0.75) * scale;
  await page.mouse.move(x1, y);
  await page.mouse.down();
  await page.mouse.move((x1 + x2) / 2, y, { steps: 4 });
  await expect(page.locator('.chart-selection')).toBeVisible();
  await page.mouse.move(x2, y, { steps: 4 });
  await page.mouse.up();

  await expect(page).toHaveURL(/[?&]from=\d+.*&to=\d+/);
  const url = new URL(page.url());
  const from = Number(url.searchParams.get('from'));
  const to = Number(url.searchParams.get('to'));
  expect(from).toBeGreaterThan(before.start);
  expect(to).toBeLessThan(before.end);
  expect(to).toBeGreaterThan(from);
  await expect(summary).toHaveAttribute('data-start', String(from));
  await expect(summary).toHaveAttribute('data-end', String(to));
  await expect(page.locator(plotted).first()).toBeAttached();
  expect(await page.locator('.chart-svg').innerHTML()).not.toEqual(svgBefore);
  await expect(page.locator('a.reset-zoom')).toBeVisible();

  expect(errors).toEqual([]);
});

test('explore: typed PromQL aggregates, and a bad query shows the engine\'s message', async ({ page }) => {
  const errors = collectErrors(page);
  const q = 'sum by (stage) (rate(demo_stage_rows_processed_total[5m]))';
  await gotoHydrated(page, `/explore?q=${encodeURIComponent(q)}&range=15m`);
  await expect(page.locator(plotted).first()).toBeVisible();
  // One series per stage, named by the `by` label only.
  const legend = await page.locator('.legend-item').allTextContents();
  expect(legend.length).toBeGreaterThan(1);
  for (const item of legend) expect(item).toMatch(/^\s*\{stage="[^"]+"\}\s*$/);

  await gotoHydrated(page, `/explore?q=${encodeURIComponent('rate(demo_stage_rows_processed_total[5m)')}&range=15m`);
  await expect(page.locator('.error-box')).toContainText('unexpected character inside brackets');
  expect(errors).toEqual([]);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('explore renders the chart on the server', async ({ page }) => {
    await page.goto('/explore');
    const metric = await firstDemoMetric(page);
    await page.goto(`/explore?q=${encodeURIComponent(metric)}&range=1h`);
    await expect(page.locator(plotted).first()).toBeAttached();
    await expect(page.locator('.chart-summary')).toContainText('step');
  });
});
