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
  await expect(page.locator(plotted).first()).toBeVisible();
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
  // is the stored bucket at the row's time, as the query API returns it for the chart's range.
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
  const aggregation = new URL(page.url()).searchParams.get('agg') || 'avg';
  // The chart reduces each step bucket [t, t + step) with the aggregation; the same reduction in
  // PromQL is <agg>_over_time over a window of step - 1 ms evaluated at t + step - 1 ms (Prometheus
  // windows are closed at both ends), with the metric name put back for the label match.
  const overTime = { avg: 'avg', min: 'min', max: 'max', sum: 'sum', count: 'count', last: 'last' }[aggregation] ?? 'avg';
  const windowMs = range.step - 1;
  // Buckets are aligned to multiples of the step since the Unix epoch.
  const first = Math.floor(range.start / range.step) * range.step;
  const last = Math.floor(range.end / range.step) * range.step;
  const api = await page.request.get('/api/v1/query_range', {
    params: {
      query: `label_replace(${overTime}_over_time(${metric}[${windowMs}ms]), "__name__", "${metric}", "", "")`,
      start: String((first + windowMs) / 1000),
      end: String((last + windowMs) / 1000),
      step: String(range.step / 1000),
    },
  });
  expect(api.ok(), await api.text()).toBeTruthy();
  const result: { metric: Record<string, string>; values: [number, string][] }[] = (await api.json()).data.result;
  for (const row of shown) {
    const series = result.find((r) => promLabels(r.metric) === row.label || r.metric.__name__ === row.label);
    expect(series, `series ${row.label} in ${JSON.stringify(result.map((r) => r.metric))}`).toBeTruthy();
    const at = Date.parse(row.time.replace(' UTC', 'Z').replace(' ', 'T')) / 1000;
    const point = series!.values.find(([t]) => Math.abs(t - windowMs / 1000 - at) < 0.0005);
    expect(point, `a point at ${row.time} for ${row.label}`).toBeTruthy();
    const [value, tolerance] = parseShown(row.value);
    expect(Math.abs(Number(point![1]) - value), `${row.label} at ${row.time}: shown ${row.value}, stored ${point![1]}`)
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
  await expect(page.locator(plotted).first()).toBeVisible();
  expect(await page.locator('.chart-svg').innerHTML()).not.toEqual(svgBefore);
  await expect(page.locator('a.reset-zoom')).toBeVisible();

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
