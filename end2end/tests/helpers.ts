import { expect, Page } from '@playwright/test';

/** Collects console errors and uncaught exceptions of a page. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  return errors;
}

/** Opens a page and waits until the wasm bundle has loaded and the app has hydrated. */
export async function gotoHydrated(page: Page, path: string) {
  const wasm = page.waitForResponse((r) => r.url().endsWith('.wasm') && r.ok());
  await page.goto(path);
  await wasm;
  await page.waitForLoadState('networkidle');
  // hydrate() sets this once the event handlers are attached.
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

/** The first metric offered by the Explore page whose name starts with demo_. */
export async function firstDemoMetric(page: Page): Promise<string> {
  const names = await page.locator('select.metric-select option').evaluateAll((opts) =>
    opts.map((o) => (o as HTMLOptionElement).value),
  );
  const demo = names.find((n) => n.startsWith('demo_'));
  expect(demo, `a demo_ metric among ${JSON.stringify(names)}`).toBeTruthy();
  return demo!;
}

/** The admin scripts/e2e.sh makes `pipewatch demo` create (PIPEWATCH_ADMIN_USER/_PASSWORD). */
export const admin = {
  user: process.env.PIPEWATCH_ADMIN_USER ?? 'e2e-admin',
  password: process.env.PIPEWATCH_ADMIN_PASSWORD ?? '',
};

/** Logs in through the Login page and waits for the page `next` sends the browser to. */
export async function logIn(page: Page, next = '/status') {
  expect(admin.password, 'PIPEWATCH_ADMIN_PASSWORD is set (scripts/e2e.sh sets it)').not.toBe('');
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await page.locator('input[name=user]').fill(admin.user);
  await page.locator('input[name=password]').fill(admin.password);
  await page.locator('form.login-form button[type=submit]').click();
  await page.waitForURL((u) => u.pathname === next);
  await expect(page.locator('.user-name')).toHaveText(admin.user);
}
