import { expect, type Page, type ConsoleMessage } from '@playwright/test';
import { demoEmail, demoPassword } from '../playwright.config';

export { demoEmail, demoPassword };

/** Collects console errors and warnings (hydration mismatches show up here) so a test can assert there are none. */
export function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (msg: ConsoleMessage) => {
    if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  return problems;
}

/** Waits until the page is hydrated: the wasm bundle has run and event handlers are attached. */
export async function hydrated(page: Page) {
  await page.waitForFunction(() => (window as any).__dwidHydrated === true, null, { timeout: 20_000 });
}

export async function signIn(page: Page, email = demoEmail, password = demoPassword) {
  await page.goto('/sign-in');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/integrations$/);
  await expect(page.getByText(email)).toBeVisible();
  await hydrated(page);
}

export async function shot(page: Page, name: string) {
  await page.screenshot({ path: `test-results/screenshots/${name}.png`, fullPage: true });
}
