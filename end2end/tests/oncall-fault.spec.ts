// The on-call journey of issue 13 against a demo with a real injected fault (scripts/e2e.sh:
// PIPEWATCH_FAULT_URL runs `--inject stall --at transform --after 20s --for 200s`, evaluates
// rules every 10 s, group_wait 5 s): log in, see StageStalled fire, open it, acknowledge it,
// see the acknowledgement in the timeline, silence its group, and see it resolve once the
// stage recovers. Nothing is seeded: every state comes from the fault, the rule engine and the
// clicks.
import { test, expect, Page } from '@playwright/test';
import { collectErrors, gotoHydrated, logIn, admin } from './helpers';

const faultURL = process.env.PIPEWATCH_FAULT_URL;
test.use({ baseURL: faultURL ?? 'http://127.0.0.1:9091' });

/** The first firing StageStalled alert's detail link on the Alerts page, once there is one. */
async function firingStall(page: Page): Promise<string> {
  let href: string | null = null;
  await expect
    .poll(
      async () => {
        await page.goto('/alerts?state=firing');
        const link = page.locator('tr.alert-row.state-firing[data-rule="StageStalled"] a.alert-name').first();
        href = (await link.count()) > 0 ? await link.getAttribute('href') : null;
        return href;
      },
      {
        message: 'StageStalled fires (the stall starts 20 s after start-up; rate over 1m == 0 for 30 s)',
        timeout: 240_000,
        intervals: [5_000],
      },
    )
    .toMatch(/^\/alerts\/\d+$/);
  return href!;
}

test('on-call: a firing alert from the injected stall is acknowledged, silenced and resolves', async ({ page }) => {
  // The fault's own clock sets the pace: up to ~2.5 min to fire, ~4 min to recover.
  test.setTimeout(8 * 60_000);
  expect(faultURL, 'PIPEWATCH_FAULT_URL is set (scripts/e2e.sh sets it)').toBeTruthy();
  const errors = collectErrors(page);
  await logIn(page, '/alerts');

  const href = await firingStall(page);
  // The list marks nobody as acknowledging it yet.
  const row = page.locator(`tr.alert-row:has(a[href="${href}"])`);
  await expect(row.locator('.alert-people')).toContainText('nobody yet');
  await row.locator('a.alert-name').click();
  await expect(page).toHaveURL(href);
  await gotoHydrated(page, href);
  await expect(page.locator('h1.alert-title')).toContainText('StageStalled');
  await expect(page.locator('h1.alert-title .alert-state')).toHaveText('firing');
  await expect(page.locator('.alert-summary-text')).toContainText('processed no rows');
  // The timeline already tells how it got here.
  await expect(page.locator('ol.timeline')).toContainText('pending → firing');

  // Acknowledge: the facts and the timeline show who did it.
  await page.locator('form.action-ack input[name=comment]').fill('looking at the transform job');
  await page.locator('form.action-ack button[type=submit]').click();
  await expect(page.locator('.fact-ack')).toContainText(`by ${admin.user}`);
  const ack = page.locator('ol.timeline li.event-acknowledged');
  await expect(ack).toContainText(`by ${admin.user}`);
  await expect(ack).toContainText('looking at the transform job');
  // The button turned into its opposite.
  await expect(page.locator('form.action-unack button')).toBeVisible();

  // Silence the alert's group, with the matchers prefilled from the group's labels.
  const silenceForm = page.locator('form.silence-group');
  await expect(silenceForm.locator('input[name=matchers]')).toHaveValue(/alertname="StageStalled"/);
  await silenceForm.locator('input[name=comment]').fill('known stall, working on it');
  await silenceForm.locator('button[type=submit]').click();
  await expect(page.locator('.ok-box')).toContainText('Silence');
  await expect(page.locator('h1.alert-title .mark-silenced')).toBeVisible();

  // The Silences page lists it as active, catching at least this alert.
  await gotoHydrated(page, '/silences');
  const silence = page.locator('tr.silence-row.silence-active').first();
  await expect(silence).toContainText('alertname="StageStalled"');
  await expect(silence).toContainText('known stall, working on it');

  // The stage recovers when the fault ends (200 s after it began): the alert resolves, and
  // the timeline says so after the acknowledgement.
  await expect
    .poll(
      async () => {
        await page.goto(href);
        return (await page.locator('h1.alert-title .alert-state').textContent())?.trim();
      },
      { message: 'the alert resolves after the fault clears', timeout: 300_000, intervals: [10_000] },
    )
    .toBe('resolved');
  const timeline = page.locator('ol.timeline');
  await expect(timeline).toContainText('firing → resolved');
  await expect(page.locator('.fact-ack')).toContainText(`by ${admin.user}`);
  expect(errors).toEqual([]);
});
