import { test, expect } from '@playwright/test';
import { collectErrors, gotoHydrated } from './helpers';

test('targets: at least one target is listed as up', async ({ page }) => {
  const errors = collectErrors(page);
  await gotoHydrated(page, '/targets');
  const upRows = page.locator('table.targets tr.target-row').filter({ has: page.locator('.badge.up') });
  await expect(upRows.first()).toBeVisible();
  await expect(upRows.first().locator('td').nth(3)).toHaveText(/ago|in /);
  expect(errors).toEqual([]);
});
