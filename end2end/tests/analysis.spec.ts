// The Pipelines, Anomalies and Drift pages against `pipewatch demo`.
//
// The rows are seeded with SQL into the demo's own database (PIPEWATCH_DATABASE_URL, which
// scripts/e2e.sh sets), exactly as the detection jobs write them, so these tests do not
// depend on when a detector fires. The pipeline graph and the charted signal are the demo's
// real lineage and metrics.
import { test, expect, Page } from '@playwright/test';
import { Client } from 'pg';
import { admin, collectErrors, gotoHydrated, logIn } from './helpers';

const dbUrl = process.env.PIPEWATCH_DATABASE_URL;
// One run's rows carry this in their signal (an always-true matcher), so reruns and the
// jobs' own anomalies never collide with the one-open-anomaly-per-signal index.
const run = `e2e${Date.now()}`;
const signal = `demo_stage_queue_depth{stage="transform",e2e_run!="${run}"}`;
const explanation = `queue depth 412, expected 20–60 for Mon 14:00; started 14:07 (${run})`;
const otherExplanation = `rows per run 1.2k, expected 330k–360k; started 13:55 (${run})`;
const column = `basket_value_${run}`;

let client: Client;
let openId = 0;
let closedId = 0;

test.describe('analysis pages', () => {
  test.skip(!dbUrl, 'PIPEWATCH_DATABASE_URL is not set (scripts/e2e.sh sets it to the demo database)');

  test.beforeAll(async () => {
    client = new Client({ connectionString: dbUrl });
    await client.connect();
    const insert = `INSERT INTO anomalies (signal, kind, labels, node, detector, state, severity, score,
        started_at, ended_at, last_seen_at, observed, expected_low, expected_high, explanation)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() - $9::interval, $10, now(), $11, $12, $13, $14)
      RETURNING id`;
    openId = (
      await client.query(insert, [
        signal, 'throughput', { stage: 'transform' }, 'transform', 'seasonal', 'open', 'critical',
        0.97, '10 minutes', null, 412, 20, 60, explanation,
      ])
    ).rows[0].id;
    closedId = (
      await client.query(insert, [
        `demo_stage_rows_processed_total{stage="feature_store",e2e_run!="${run}"}`, 'volume',
        { stage: 'feature_store' }, 'feature_store', 'level_shift', 'closed', 'warning', 0.8,
        '40 minutes', new Date(Date.now() - 20 * 60_000), 1200, 330_000, 360_000, otherExplanation,
      ])
    ).rows[0].id;
    const drift = `INSERT INTO drift_results (dataset, "column", method, value, threshold, drifted,
        reference_from_at, reference_to_at, current_from_at, current_to_at, evaluated_at, explanation)
      VALUES ('features_daily', $1, 'wasserstein', $2, 0.1, $3, now() - interval '25 hours',
        now() - interval '1 hour', now() - interval '1 hour' - $4::interval, now() - $4::interval,
        now() - $4::interval, $5)`;
    await client.query(drift, [column, 0.03, false, '10 minutes', `${column} stable: Wasserstein 0.03 (threshold 0.1)`]);
    await client.query(drift, [column, 0.41, true, '0 minutes', `${column} drifted: Wasserstein 0.41 (threshold 0.1)`]);
  });

  test.afterAll(async () => {
    if (!client) return;
    await client.query('DELETE FROM anomaly_feedback WHERE anomaly_id = ANY($1)', [[openId, closedId]]);
    await client.query('DELETE FROM anomalies WHERE id = ANY($1)', [[openId, closedId]]);
    await client.query('DELETE FROM drift_results WHERE "column" = $1', [column]);
    await client.end();
  });

  test('pipelines: the stage with a critical anomaly is coloured and links to its anomalies', async ({ page }) => {
    const errors = collectErrors(page);
    await gotoHydrated(page, '/');
    await expect(page.locator('nav a[aria-current="page"]')).toHaveText('Pipelines');
    const node = page.locator('.pipeline-graph a.pipeline-node[data-node="transform"]');
    await expect(node).toHaveAttribute('data-status', 'critical');
    await expect(node).toContainText('critical · 1 open');
    // The demo's lineage is drawn too: its first job and a dataset it writes.
    await expect(page.locator('.pipeline-node[data-node="stream_ingest"]')).toBeVisible();
    await expect(page.locator('.pipeline-node[data-node="raw_events"]')).toBeVisible();
    await expect(page.locator('.pipeline-edge').first()).toBeAttached();
    // The focused view: transform and two hops either side, not the topic at the start.
    await page.fill('input.focus-input', 'transform');
    await page.selectOption('select.hops-select', '2');
    await expect(page).toHaveURL(/focus=transform/);
    await expect(page.locator('.pipeline-node[data-node="raw_events"]')).toBeVisible();
    await expect(page.locator('.pipeline-node[data-node="kafka.events"]')).toHaveCount(0);
    await node.click();
    await expect(page).toHaveURL(/\/anomalies\?node=transform$/);
    await expect(page.locator(`tr.anomaly-row[data-id="${openId}"]`)).toBeVisible();
    await expect(page.locator(`tr.anomaly-row[data-id="${closedId}"]`)).toHaveCount(0);
    expect(errors).toEqual([]);
  });

  test('anomalies: listed open first with the explanation; filters narrow the list', async ({ page }) => {
    const errors = collectErrors(page);
    await gotoHydrated(page, '/anomalies');
    const open = page.locator(`tr.anomaly-row[data-id="${openId}"]`);
    await expect(open).toContainText(explanation);
    await expect(open.locator('.sev-badge')).toHaveText('critical');
    await expect(open.locator('.state-badge')).toHaveText('open');
    await expect(open).toContainText(/1\d min ago|10 min ago/);
    const closed = page.locator(`tr.anomaly-row[data-id="${closedId}"]`);
    await expect(closed).toContainText(otherExplanation);
    // Open first: our open row comes before our closed one.
    const ids = await page.locator('tr.anomaly-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    expect(ids.indexOf(String(openId))).toBeLessThan(ids.indexOf(String(closedId)));

    // Choosing a filter applies it at once (the select submits its form).
    await page.selectOption('select.filter-state', 'closed');
    await expect(page).toHaveURL(/state=closed/);
    await expect(page.locator(`tr.anomaly-row[data-id="${closedId}"]`)).toBeVisible();
    await expect(page.locator(`tr.anomaly-row[data-id="${openId}"]`)).toHaveCount(0);
    await page.selectOption('select.filter-severity', 'critical');
    await expect(page).toHaveURL(/severity=critical/);
    await expect(page.locator(`tr.anomaly-row[data-id="${closedId}"]`)).toHaveCount(0);
    expect(errors).toEqual([]);
  });

  test('anomaly detail: the signal with its band, and "False alarm" is recorded and shown', async ({ page }) => {
    const errors = collectErrors(page);
    // Feedback needs an editor: the demo's anonymous visitors are viewers.
    await logIn(page, '/anomalies');
    await gotoHydrated(page, '/anomalies');
    await page.locator(`tr.anomaly-row[data-id="${openId}"] a.anomaly-explanation`).click();
    await expect(page).toHaveURL(new RegExp(`/anomalies/${openId}$`));
    await expect(page.locator('.explanation')).toHaveText(explanation);
    await expect(page.locator('.anomaly-facts')).toContainText('seasonal');
    await expect(page.locator('.anomaly-facts')).toContainText('0.97 of 1');
    // The demo's queue depth is charted, with the expected band (green) and the span (red).
    await expect(page.locator('.anomaly-chart svg polyline[stroke-width="2"]').first()).toBeAttached();
    await expect(page.locator('.anomaly-chart svg rect[fill="#2CA02C" i]')).toHaveCount(1);
    await expect(page.locator('.anomaly-chart svg rect[fill="#D62728" i]')).toHaveCount(1);
    // The closed anomaly overlaps this window: it is related.
    await expect(page.locator('ul.related')).toContainText(otherExplanation);

    await page.locator('.feedback-bar button.fb-false_alarm').click();
    await expect(page.locator('.feedback-bar .feedback-note')).toHaveText('marked false alarm');
    await expect(page.locator('.feedback-bar button.fb-false_alarm')).toHaveClass(/chosen/);
    const row = await client.query('SELECT feedback, feedback_by FROM anomalies WHERE id = $1', [openId]);
    expect(row.rows[0]).toEqual({ feedback: 'false_alarm', feedback_by: admin.user });
    const windows = await client.query('SELECT kind FROM anomaly_feedback WHERE anomaly_id = $1', [openId]);
    expect(windows.rows).toEqual([{ kind: 'false_alarm' }]);
    expect(errors).toEqual([]);
  });

  test('anomalies: a feedback click in the list changes the row', async ({ page }) => {
    const errors = collectErrors(page);
    await logIn(page, '/anomalies');
    await gotoHydrated(page, '/anomalies');
    const row = page.locator(`tr.anomaly-row[data-id="${closedId}"]`);
    await expect(row.locator('.feedback-note')).toHaveCount(0);
    await row.locator('button.fb-expected').click();
    await expect(row.locator('.feedback-note')).toHaveText('marked expected');
    await expect(row.locator('button.fb-expected')).toHaveClass(/chosen/);
    expect(errors).toEqual([]);
  });

  test('drift: the drifted column is listed with method, value and threshold, and its history', async ({ page }) => {
    const errors = collectErrors(page);
    await gotoHydrated(page, '/drift');
    const row = page.locator(`tr.drift-row[data-column="${column}"]`);
    await expect(row).toContainText('wasserstein');
    await expect(row).toContainText('0.41');
    await expect(row.locator('.sev-badge')).toHaveText('drifted');
    await row.locator('a').first().click();
    await expect(page).toHaveURL(new RegExp(`column=${column}`));
    await expect(page.locator('h2.drift-selected')).toContainText(column);
    await expect(page.locator('table.drift-history tbody tr')).toHaveCount(2);
    await expect(page.locator('.drift-chart svg polyline[stroke-width="2"]')).toHaveCount(2);
    expect(errors).toEqual([]);
  });

  test('without JavaScript the anomaly list renders and feedback still posts', async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page: Page = await context.newPage();
    await logIn(page, '/anomalies');
    await page.goto('/anomalies?state=closed');
    const row = page.locator(`tr.anomaly-row[data-id="${closedId}"]`);
    await expect(row).toContainText(otherExplanation);
    await row.locator('button.fb-false_alarm').click();
    // The form posted to the server function, which sent the browser back to the list.
    await expect(page).toHaveURL(/\/anomalies\?state=closed/);
    await expect(page.locator(`tr.anomaly-row[data-id="${closedId}"] .feedback-note`)).toHaveText('marked false alarm');
    await context.close();
  });
});
