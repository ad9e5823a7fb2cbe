import { test, expect } from '@playwright/test';
import { collectErrors, gotoHydrated, logIn } from './helpers';

test('login: a wrong password shows an error and stays on the login page', async ({ page }) => {
  await page.goto('/login?next=%2Fstatus');
  await page.locator('input[name=user]').fill('nobody');
  await page.locator('input[name=password]').fill('not-the-password');
  await page.locator('form.login-form button[type=submit]').click();
  await expect(page).toHaveURL(/\/login\?error=invalid/);
  await expect(page.locator('.error-box')).toContainText('Wrong user name or password');
});

test('users and tokens: an admin creates a token, sees it once, and revokes it', async ({ page }) => {
  const errors = collectErrors(page);
  await logIn(page, '/users');
  await gotoHydrated(page, '/users');
  const name = `e2e-token-${Date.now()}`;
  await page.locator('form.create-token input[name=name]').fill(name);
  await page.locator('form.create-token select[name=scope]').selectOption('read');
  await page.locator('form.create-token button[type=submit]').click();
  await expect(page.locator('.token-secret')).toHaveText(/^pwt_/);
  const row = page.locator(`table.tokens tr[data-token="${name}"]`);
  await expect(row).toContainText('live');
  await row.locator('button', { hasText: 'Revoke' }).click();
  await expect(row).toContainText('revoked');
  // The audit log shows both changes by this admin.
  await gotoHydrated(page, '/audit');
  await expect(page.locator('table.audit')).toContainText('token.create');
  await expect(page.locator('table.audit')).toContainText('token.revoke');
  // Logging out ends the session: the admin page is refused again.
  await page.locator('form.logout-form button').click();
  await expect(page).toHaveURL(/\/login/);
  const resp = await page.goto('/users');
  expect(resp?.url()).toContain('/login?next=%2Fusers');
  expect(errors).toEqual([]);
});
