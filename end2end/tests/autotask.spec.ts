import { test, expect, type Page } from '@playwright/test';
import { autotaskSandboxURL } from '../playwright.config';
import { hydrated, sameOrigin, shot, signIn, watchConsole } from './helpers';

// Tall enough to see the whole mapping in one screenshot.
test.use({ viewport: { width: 1280, height: 1900 } });

const DEMO_USER = 'dwid-api@demo-msp.example';
const DEMO_SECRET = 'DemoAutotaskSecret789';
const DEMO_CODE = 'DWIDDEMOTRACKINGIDENTIFIER1';

async function autotaskTickets(page: Page): Promise<any[]> {
  const response = await page.request.get(`${autotaskSandboxURL}/_sandbox/tickets`);
  expect(response.ok()).toBeTruthy();
  return response.json();
}

const reference = (ticket: any): string | undefined =>
  (ticket.userDefinedFields ?? []).find((u: any) => u.name === 'DWID Reference')?.value;

test('an Autotask integration through the wizard: test ticket, Enable, a compromise delivered', async ({ page }) => {
  test.setTimeout(150_000);
  const problems = watchConsole(page);
  const name = `Autotask desk ${Date.now().toString(36)}`;
  await signIn(page);

  // 1. Ticketing system: Autotask.
  await page.goto('/integrations/new/1');
  await hydrated(page);
  await page.getByRole('radio', { name: /Autotask/ }).check();
  await expect(page.getByRole('radio', { name: /Autotask/ })).toBeChecked();
  await page.getByRole('button', { name: 'Next' }).click();

  // 2. Name.
  await expect(page).toHaveURL(/\/integrations\/new\/2$/);
  await page.getByRole('textbox', { name: 'Integration name' }).fill(name);
  await page.getByRole('button', { name: 'Next' }).click();

  // 3. Autotask information: a wrong secret is named, then the demo API user connects.
  await expect(page).toHaveURL(/\/integrations\/new\/3$/);
  await expect(page.getByRole('heading', { name: /Autotask information/ })).toBeVisible();
  await page.getByLabel('API user').fill(DEMO_USER);
  await page.getByLabel('Secret').fill('not-the-secret');
  await page.getByLabel('API tracking identifier').fill(DEMO_CODE);
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByRole('alert')).toContainText('secret');
  await page.getByLabel('Secret').fill(DEMO_SECRET);
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByRole('status')).toContainText('Connected to Autotask');
  await page.getByText('Advanced settings').click();
  await expect(page.getByLabel('Default: 5,000 requests per hour')).toBeChecked();
  await shot(page, '70-autotask-3-connection');
  await page.getByRole('button', { name: 'Next' }).click();

  // 4. Organizations and Autotask companies.
  await expect(page).toHaveURL(/\/integrations\/new\/4$/);
  await expect(page.getByRole('heading', { name: /Organizations and Autotask companies/ })).toBeVisible();
  await expect(page.getByRole('table').getByRole('row', { name: /Acme Corporation/ })).toContainText(
    '✓ Acme Corporation',
  );
  await shot(page, '71-autotask-4-organizations');
  await page.getByRole('button', { name: 'Next' }).click();

  // 5. Fields from the account's own field information: the required lists are marked and must be chosen.
  await expect(page).toHaveURL(/\/integrations\/new\/5$/);
  await expect(page.getByRole('heading', { name: /Map Dark Web ID tokens to Autotask ticket fields/ })).toBeVisible();
  const mapping = page.getByRole('list', { name: 'Field mapping' });
  const title = page.getByLabel('Title', { exact: true });
  await expect(title).toBeVisible();
  await title.fill('Dark Web ID: [compromise] (Autotask)');
  const titleRow = mapping.getByRole('listitem').filter({ has: title });
  await expect(titleRow.locator('.preview__counter')).toHaveText('50 / 255');
  const queueRow = mapping.getByRole('listitem').filter({ has: page.getByLabel(/^Queue/) });
  await expect(queueRow.getByRole('alert')).toContainText('Choose a queue: Autotask requires one on every ticket.');
  await expect(page.locator('#field-palette-title')).toHaveText('Available Autotask Fields');
  await expect(page.locator('.palette__item[data-field="udf:Customer Tier"]')).toBeVisible();
  await page.getByLabel(/^Status/).selectOption({ label: 'New' });
  await page.getByLabel(/^Priority/).selectOption({ label: 'High' });
  await page.getByLabel(/^Queue/).selectOption({ label: 'Security Operations' });
  await page.getByLabel(/^Issue type/).selectOption({ label: 'Security' });
  await expect(page.getByLabel(/^Sub-issue type/).locator('option')).toHaveText([
    'Autotask default',
    'Credential Leak',
    'Phishing',
    'Malware',
  ]);
  await page.getByLabel(/^Sub-issue type/).selectOption({ label: 'Credential Leak' });
  // Another issue type resets the sub-issue type, with a note.
  await page.getByLabel(/^Issue type/).selectOption({ label: 'Network' });
  await expect(page.getByRole('status').filter({ hasText: 'was reset' })).toContainText(
    'Sub-issue type was reset: it is not of the issue type "Network".',
  );
  await page.getByLabel(/^Issue type/).selectOption({ label: 'Security' });
  await page.getByLabel(/^Sub-issue type/).selectOption({ label: 'Credential Leak' });
  await expect(mapping.getByRole('alert')).toHaveCount(0);
  await shot(page, '72-autotask-5-mapping');

  await page.getByRole('button', { name: 'Save and Submit a Test Compromise' }).click();
  const created = page.getByRole('status').filter({ hasText: 'Test ticket #' });
  await expect(created).toContainText('created in Autotask');
  const testId = Number((await created.textContent())!.match(/#(\d+)/)![1]);
  const testTicket = (await autotaskTickets(page)).find((t) => t.id === testId);
  expect(testTicket.title).toBe('Dark Web ID: jane.doe@acme-corp.example (Autotask)');
  expect(testTicket.queueID).toBe(29682833);
  expect(reference(testTicket)).toMatch(/^dwid:[0-9a-f-]{36}\/[0-9]+$/);
  await shot(page, '73-autotask-test-created');

  // Saved: listed as Autotask, Inactive until enabled; Enable.
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page).toHaveURL(/\/integrations$/);
  await hydrated(page);
  const row = page.getByRole('row', { name: new RegExp(name) });
  await expect(row.getByRole('cell').nth(1)).toHaveText('Autotask');
  await expect(row.getByText('Inactive')).toBeVisible();
  await row.getByRole('button', { name: 'Enable' }).click();
  await expect(row.getByText('Active', { exact: true })).toBeVisible();
  await expect(row.getByRole('img', { name: 'Healthy' })).toBeVisible();
  await shot(page, '74-autotask-table');

  // A compromise of Acme Corporation becomes an Autotask ticket carrying its reference.
  const before = (await autotaskTickets(page)).length;
  await page.goto('/organizations');
  await hydrated(page);
  await page.getByRole('button', { name: 'Simulate a compromise for Acme Corporation' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Compromise imported' })).toBeVisible();
  await expect
    .poll(async () => (await autotaskTickets(page)).length, { timeout: 30_000, intervals: [250, 500, 1000] })
    .toBeGreaterThan(before);
  const delivered = (await autotaskTickets(page)).find(
    (t) => t.title === 'Dark Web ID: jane.doe@acme-corporation.example (Autotask)',
  );
  expect(delivered).toBeTruthy();
  expect(reference(delivered)).toMatch(/^dwid:[0-9a-f-]{36}\/[0-9]+$/);

  // Its Delivery log shows the ticket.
  const integrations = await (
    await page.request.post('/api/integrations/list', { form: {}, headers: sameOrigin })
  ).json();
  const id = integrations.find((i: any) => i.name === name).id;
  await page.goto(`/integrations/${id}/deliveries`);
  await hydrated(page);
  await expect(page.getByRole('cell', { name: `#${delivered.id}` }).first()).toBeVisible();
  await shot(page, '75-autotask-delivery-log');

  // Leave no enabled integration behind for the specs that count tickets.
  const removed = await page.request.post('/api/integrations/remove', { form: { id: String(id) }, headers: sameOrigin });
  expect(removed.status()).toBe(200);
  expect(problems.filter((p) => !/status of (400|502)/.test(p))).toEqual([]);
});
