import { test, expect } from '@playwright/test';
import { collectErrors, firstDemoMetric, gotoHydrated } from './helpers';

// Series are drawn as 2-pixel polylines (single points as circles); the grid uses 1-pixel ones.
const plotted = '.chart-svg svg polyline[stroke-width="2"], .chart-svg svg circle';

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
