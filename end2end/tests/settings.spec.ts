import { test, expect } from '@playwright/test';
import { baseURL } from '../playwright.config';
import { hydrated, shot, signIn, watchConsole } from './helpers';

// One compromise for a demo organization, as NDJSON; a fresh uuid each run, so the spec can be re-run.
function ndjsonRecord(): string {
  const hex = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  return JSON.stringify({
    uuid,
    record_type: 'Email',
    compromise: 'token.test@acme-corp.example',
    password_criteria: 'N/A',
    source: 'Settings spec',
    organization_name: 'Acme Corporation',
    search_value: 'acme-corp.example',
    date_added: '2026-01-02T03:04:05Z',
    date_found: '2026-01-01',
  }) + '\n';
}

test('create an API token, see it once, use it, revoke it', async ({ page }) => {
  const problems = watchConsole(page);
  const name = `E2E importer ${Date.now()}`;
  await signIn(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await expect(page).toHaveURL(/\/settings$/);
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Settings', level: 1 })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'API tokens', exact: true })).toBeVisible();
  await expect(page.getByText(`curl -X POST ${baseURL}/api/v1/compromises`)).toBeVisible();
  // Other specs may have left tokens on the shared demo partner; when run alone, the list starts empty.
  const empty = page.getByText('You have no API tokens.');
  await expect(empty.or(page.getByRole('table'))).toBeVisible();
  if (await empty.isVisible()) await shot(page, '40-settings-empty');

  // An empty name is refused with the validation sentence, inline.
  const create = page.getByRole('button', { name: 'Create token' });
  let reply = page.waitForResponse((r) => r.url().includes('/api/api-tokens/create'));
  await create.click();
  await reply;
  await expect(page.getByRole('alert')).toHaveText('Enter a name for the token, e.g. the system that will use it.');

  await page.getByLabel('Token name').fill(name);
  reply = page.waitForResponse((r) => r.url().includes('/api/api-tokens/create'));
  await create.click();
  await reply;
  const panel = page.getByRole('region', { name: `Your new token “${name}”` });
  await expect(panel).toBeVisible();
  await expect(panel.getByText('Copy it now: it will not be shown again.')).toBeVisible();
  await expect(panel.getByRole('button', { name: 'Copy' })).toBeVisible();
  const field = panel.getByLabel('New API token');
  await expect(field).toHaveAttribute('readonly', '');
  const token = await field.inputValue();
  expect(token).toMatch(/^dwid_[0-9a-f]{48}$/);
  await expect(page.getByLabel('Token name')).toHaveValue('');
  const table = page.getByRole('table');
  // The token's row (a confirmation opens a second row under it, which names the token too).
  const row = table.getByRole('row', { name: new RegExp(name) }).first();
  await expect(row).toContainText(`${token.slice(0, 13)}…`);
  await expect(row).toContainText('Never');
  await expect(row.getByText('Active', { exact: true })).toBeVisible();
  await shot(page, '41-settings-new-token');

  // Copy: granted clipboard permission, the token lands on the clipboard.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await panel.getByRole('button', { name: 'Copy' }).click();
  await expect(panel.getByRole('status')).toHaveText('Copied to the clipboard.');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(token);

  // After a reload the value is gone for good; the token is listed by its prefix only.
  await page.reload();
  await hydrated(page);
  await expect(page.getByRole('region', { name: /Your new token/ })).toHaveCount(0);
  await expect(row).toContainText(`${token.slice(0, 13)}…`);
  expect(await page.content()).not.toContain(token);

  // The token works for the import API.
  const post = () =>
    page.request.post('/api/v1/compromises', {
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/x-ndjson' },
      data: ndjsonRecord(),
    });
  let response = await post();
  expect(response.status(), await response.text()).toBe(200);
  expect(await response.json()).toMatchObject({ received: 1, imported: 1, duplicates: 0 });
  await page.reload();
  await hydrated(page);
  await expect(row).not.toContainText('Never');
  await expect(row).toContainText(/\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC.*\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);

  // Revoke asks first; Cancel keeps it.
  await row.getByRole('button', { name: `Revoke ${name}` }).click();
  const confirm = table.getByRole('group', { name: `Confirm revoking ${name}` });
  await expect(confirm).toContainText(`Revoke “${name}”? Systems using it will be refused at once.`);
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(confirm).toHaveCount(0);
  await expect(row.getByText('Active', { exact: true })).toBeVisible();
  await row.getByRole('button', { name: `Revoke ${name}` }).click();
  await expect(confirm).toBeVisible();
  await shot(page, '42-settings-revoke-confirm');
  reply = page.waitForResponse((r) => r.url().includes('/api/api-tokens/revoke'));
  await confirm.getByRole('button', { name: 'Yes, revoke' }).click();
  await reply;
  await expect(row).toContainText(/Revoked \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
  await expect(confirm).toHaveCount(0);
  await expect(row).toHaveClass(/api-token-row--revoked/);
  await expect(row.getByRole('button', { name: /Revoke/ })).toHaveCount(0);
  await shot(page, '43-settings-revoked');

  // Refused from now on.
  response = await post();
  expect(response.status()).toBe(401);
  await page.reload();
  await hydrated(page);
  await expect(row).toContainText('Revoked');
  expect(problems.filter((p) => !p.includes('400'))).toEqual([]);
});
