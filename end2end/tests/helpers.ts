import { expect, type Page, type ConsoleMessage } from '@playwright/test';
import { baseURL, demoEmail, demoPassword, sandboxURL } from '../playwright.config';

export { demoEmail, demoPassword };

/** What a browser's own page sends with a POST: the server refuses state changes from other origins. */
export const sameOrigin = { Origin: baseURL };

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

// Integrations are created through the same server function the wizard saves with.
export async function createIntegration(page: Page, name: string): Promise<number> {
  const response = await page.request.post('/api/integrations/save', {
    headers: sameOrigin,
    data: {
      id: null,
      input: {
        name,
        site: 'http://127.0.0.1:3005',
        company_id: 'dwid_demo',
        auth_kind: 'ApiKeys',
        public_key: 'demo-public-key',
        private_key: 'demo-private-key',
        username: '',
        password: '',
        mapping: [
          { field: 'summary', value: 'Dark Web ID: [compromise]' },
          { field: 'company', value: '' },
        ],
      },
    },
  });
  expect(response.status(), await response.text()).toBe(200);
  return Number(await response.text());
}

type MappingRow = { field: string; value: string };

/**
 * An integration on the in-process ConnectWise sandbox with its demo account (so deliveries and test tickets really
 * arrive there), optionally enabled at once.
 */
export async function createSandboxIntegration(
  page: Page,
  name: string,
  options: { mapping?: MappingRow[]; active?: boolean } = {},
): Promise<number> {
  const mapping = options.mapping ?? [
    { field: 'summary', value: 'Dark Web ID: [compromise]' },
    { field: 'company', value: '' },
  ];
  const response = await page.request.post('/api/integrations/save', {
    headers: sameOrigin,
    data: {
      id: null,
      input: {
        name,
        site: sandboxURL,
        company_id: 'dwid_demo',
        auth_kind: 'ApiKeys',
        public_key: 'DemoPublicKey123',
        private_key: 'DemoPrivateKey456',
        username: '',
        password: '',
        mapping,
      },
    },
  });
  expect(response.status(), await response.text()).toBe(200);
  const id = Number(await response.text());
  if (options.active) {
    const enable = await page.request.post('/api/integrations/set_active', {
      form: { id: String(id), active: 'true' },
      headers: sameOrigin,
    });
    expect(enable.status(), await enable.text()).toBe(200);
  }
  return id;
}
