// A real fault, found by the real detection job and seen in the browser: scripts/e2e.sh starts
// a second demo (PIPEWATCH_FAULT_URL) with `--inject stall --at transform --after 20s` and a
// 15 s analysis interval. Nothing is seeded: the anomaly must come from the job.
//
// What a stall at `transform` does (demo/src/lib.rs): its queue grows from the first second
// (the backlog signal, judged at once), and its rows counter and every downstream one go flat
// (throughput, judged once two one-minute steps of `rate(...[2m])` show it).
// `stream_ingest` is upstream and keeps running: it must stay healthy.
import { test, expect, Page } from '@playwright/test';
import { collectErrors, gotoHydrated } from './helpers';

const faultUrl = process.env.PIPEWATCH_FAULT_URL;

/** The open backlog anomaly rows of `transform` on the Anomalies page (after a reload). */
async function transformBacklogRows(page: Page) {
  await page.goto(`${faultUrl}/anomalies?node=transform&state=open`);
  return page.locator('tr.anomaly-row[data-node="transform"]', { hasText: 'backlog ·' });
}

/** A node's `data-status` on the Pipelines page (after a reload). */
async function nodeStatus(page: Page, node: string): Promise<string | null> {
  await page.goto(`${faultUrl}/`);
  return page.locator(`.pipeline-graph a.pipeline-node[data-node="${node}"]`).getAttribute('data-status');
}

test.describe('a real stall, detected', () => {
  test.skip(!faultUrl, 'PIPEWATCH_FAULT_URL is not set (scripts/e2e.sh starts the faulted demo)');

  test('the stall at transform opens an explained anomaly, charted with its band, and colours the stage', async ({ page }) => {
    // The fault starts 20 s after the demo; its first rounds run every 15 s; downstream
    // throughput needs two one-minute steps on top. Generous, but bounded.
    test.setTimeout(6 * 60_000);
    const errors = collectErrors(page);

    // 1. The Anomalies page lists it for transform (about two analysis intervals after the
    //    fault start, as the job runs; polled with reloads).
    await expect
      .poll(async () => (await transformBacklogRows(page)).count(), {
        message: 'an open backlog anomaly at transform on the Anomalies page',
        timeout: 120_000,
        intervals: [3_000],
      })
      .toBeGreaterThan(0);
    const row = (await transformBacklogRows(page)).first();
    await expect(row.locator('.state-badge')).toHaveText('open');
    await expect(row.locator('.sev-badge')).toHaveText(/^(warning|critical)$/);
    // The sentence an on-call engineer reads: the queue's size, its band for this hour of the
    // week, and when it started; e.g. "backlog 12.3k waiting, expected 0–89 waiting for Mon
    // 05:00; started 05:12 (spike)".
    const explanation = row.locator('a.anomaly-explanation');
    await expect(explanation).toHaveText(
      /^backlog [\d.]+k? waiting, expected [\d.]+k?–[\d.]+k? waiting for (Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d:00; started \d\d:\d\d( \(.+\))?$/,
    );
    const text = (await explanation.textContent())!;
    const [, observed, high] = text.match(/^backlog ([\d.]+k?) waiting, expected [\d.]+k?–([\d.]+k?) waiting/)!;
    const num = (s: string) => (s.endsWith('k') ? parseFloat(s) * 1000 : parseFloat(s));
    expect(num(observed), `observed above the band in ${text}`).toBeGreaterThan(num(high));

    // 2. Its detail: the same sentence, the queue charted with the expected band (green) and
    //    the flagged span (red).
    await explanation.click();
    await expect(page).toHaveURL(/\/anomalies\/\d+$/);
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await expect(page.locator('.explanation')).toHaveText(text);
    await expect(page.locator('.anomaly-facts code.signal')).toContainText('demo_stage_queue_depth{');
    await expect(page.locator('.anomaly-facts code.signal')).toContainText('stage="transform"');
    await expect(page.locator('.anomaly-chart svg polyline[stroke-width="2"]').first()).toBeAttached();
    await expect(page.locator('.anomaly-chart svg rect[fill="#2CA02C" i]')).toHaveCount(1);
    await expect(page.locator('.anomaly-chart svg rect[fill="#D62728" i]')).toHaveCount(1);
    await expect(page.locator('.anomaly-chart-note')).toContainText('(still open)');

    // 3. The Pipelines page: transform is coloured by it, and links to its anomalies.
    await gotoHydrated(page, `${faultUrl}/`);
    const transform = page.locator('.pipeline-graph a.pipeline-node[data-node="transform"]');
    await expect(transform).toHaveAttribute('data-status', /^(warning|critical)$/);
    await expect(transform).toContainText(/(warning|critical) · \d+ open/);
    await expect(transform).toHaveAttribute('href', '/anomalies?node=transform');

    // 4. Downstream: the page colours each node by its own open anomalies, and the stall starves
    //    the stages after transform, so their throughput anomalies open once the rate window
    //    shows it. Upstream, stream_ingest keeps running and stays healthy throughout (no
    //    false alarm from the demo's restart seam either).
    for (const node of ['feature_store', 'model_serving']) {
      await expect
        .poll(() => nodeStatus(page, node), {
          message: `${node} (downstream of the stall) coloured on the Pipelines page`,
          timeout: 180_000,
          intervals: [5_000],
        })
        .toMatch(/^(warning|critical)$/);
    }
    expect(await nodeStatus(page, 'stream_ingest')).toBe('ok');
    const upstream = await page.request.get(`${faultUrl}/api/v1/anomalies?node=stream_ingest`);
    expect(upstream.ok()).toBeTruthy();
    expect((await upstream.json()).data, 'anomalies ever opened at stream_ingest (upstream)').toEqual([]);
    expect(errors).toEqual([]);
  });
});
