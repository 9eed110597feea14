import { test, expect, type Page } from '@playwright/test';
import { sandboxURL } from '../playwright.config';
import { createIntegration, hydrated, shot, signIn, watchConsole } from './helpers';

// Tall enough that a drag from the palette to the mapping needs no scrolling (Chromium ends a drag that scrolls).
test.use({ viewport: { width: 1280, height: 1900 } });

async function sandboxTickets(page: Page): Promise<any[]> {
  const response = await page.request.get(`${sandboxURL}/_sandbox/tickets`);
  expect(response.ok()).toBeTruthy();
  return response.json();
}

test('create an integration through every step, submit test compromises, follow its health live', async ({
  page,
  context,
}) => {
  test.setTimeout(120_000);
  const problems = watchConsole(page);
  await signIn(page);
  await createIntegration(page, 'Name In Use');

  // 1. Ticketing system
  await page.getByRole('link', { name: '+ ADD NEW INTEGRATION' }).click();
  await expect(page).toHaveURL(/\/integrations\/new\/1$/);
  await hydrated(page);
  await expect(page.getByRole('heading', { name: /Select your ticketing system/ })).toBeVisible();
  await expect(page.getByRole('radio', { name: /Kaseya BMS/ })).toBeDisabled();
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByRole('alert')).toHaveText('Choose a ticketing system to continue.');
  await page.getByRole('radio', { name: /ConnectWise/ }).check();
  await shot(page, '20-wizard-1-system');
  await page.getByRole('button', { name: 'Next' }).click();

  // 2. Name
  await expect(page).toHaveURL(/\/integrations\/new\/2$/);
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByRole('alert')).toHaveText('Enter a name for the integration.');
  // A name already in use is refused at once.
  await page.getByRole('textbox', { name: 'Integration name' }).fill('name in use');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByRole('alert')).toHaveText(
    'An integration named "name in use" already exists. Choose another name.',
  );
  await page.getByRole('textbox', { name: 'Integration name' }).fill('  Sandbox PSA  ');
  await shot(page, '21-wizard-2-name');
  await page.getByRole('button', { name: 'Next' }).click();

  // 3. ConnectWise information, with a wrong key first.
  await expect(page).toHaveURL(/\/integrations\/new\/3$/);
  await page.getByLabel('Site').fill(sandboxURL);
  await page.getByLabel('Company ID').fill('dwid_demo');
  await page.getByLabel('Public Key').fill('DemoPublicKey123');
  await page.getByLabel('Private Key').fill('wrong-private-key');
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByRole('alert')).toContainText('ConnectWise');
  await page.getByLabel('Private Key').fill('DemoPrivateKey456');
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByRole('status')).toContainText('Connected to ConnectWise Manage');
  // Advanced settings: the request budget, the default or the partner's own, checked as it is typed.
  await page.getByText('Advanced settings').click();
  await expect(page.getByLabel('Default: 1,000 requests per minute')).toBeChecked();
  await page.getByLabel('Custom').check();
  await page.getByLabel('Requests', { exact: true }).fill('0');
  await expect(page.getByRole('alert')).toContainText('The request budget must be between 10 and 100,000 requests per minute');
  await page.getByLabel('Requests', { exact: true }).fill('5000');
  await page.getByLabel('requests per', { exact: true }).selectOption('hour');
  await expect(page.getByRole('alert')).toHaveCount(0);
  await shot(page, '22-wizard-3-connection');

  // A reload lands on the same step with the values kept (keys stay in memory only, so they are asked again).
  await page.reload();
  await hydrated(page);
  await expect(page.getByLabel('Site')).toHaveValue(sandboxURL);
  await expect(page.getByLabel('Company ID')).toHaveValue('dwid_demo');
  await page.getByLabel('Public Key').fill('DemoPublicKey123');
  await page.getByLabel('Private Key').fill('DemoPrivateKey456');
  await page.getByRole('button', { name: 'Next' }).click();

  // 4. Organizations and companies: Globex Inc is a near miss of "Globex, Inc.".
  await expect(page).toHaveURL(/\/integrations\/new\/4$/);
  const matches = page.getByRole('table');
  await expect(matches.getByRole('row', { name: /Acme Corporation/ })).toContainText('✓ Acme Corporation');
  const globex = matches.getByRole('row', { name: /Globex Inc/ });
  await expect(globex).toContainText('No company with exactly this name');
  await expect(globex).toContainText('Globex, Inc.');
  await shot(page, '23-wizard-4-organizations');
  await globex.getByRole('button', { name: /^Rename organization to match/ }).click();
  await expect(matches.getByRole('row', { name: /Globex, Inc\./ })).toContainText('✓ Globex, Inc.');
  await page.getByRole('button', { name: 'Next' }).click();

  // 5. Field mapping. The lists start on ConnectWise's defaults; choose the board and a status of it.
  await expect(page).toHaveURL(/\/integrations\/new\/5$/);
  const mapping = page.getByRole('list', { name: 'Field mapping' });
  const rowKeys = () => mapping.locator('li.mapping-row label.mapping-row__label').allTextContents();
  await expect(page.getByLabel('Board', { exact: true })).toHaveValue('');
  await page.getByLabel('Board', { exact: true }).selectOption({ label: 'Security Operations' });
  await page.getByLabel('Status', { exact: true }).selectOption({ label: 'Triage' });
  // Drag a field from the palette onto a row: it is inserted there, with a value and a live preview.
  const company = mapping.getByRole('listitem').filter({ has: page.getByLabel('Company', { exact: true }) });
  await page.locator('.palette__item[data-field="initialInternalAnalysis"]').dragTo(company);
  const analysis = page.getByLabel('Initial Internal Analysis', { exact: true });
  expect((await rowKeys()).slice(0, 4)).toEqual(['Summary', 'Initial Description', 'Initial Internal Analysis', 'Company']);
  await analysis.fill('Record [uuid]');
  await expect(mapping.getByRole('listitem').filter({ has: analysis }).locator('.preview__text')).toHaveText(
    'Record 5f0c2a7e-93d4-4b1e-a6f8-2c71e0d94b3a',
  );
  // Remove a row and add it back from the keyboard path; drag the Company row to the top by its handle.
  await page.getByRole('button', { name: 'Remove Item' }).click();
  await expect(page.getByLabel('Item', { exact: true })).toHaveCount(0);
  await page.getByLabel('Add field').selectOption({ label: 'Item' });
  await page.getByRole('button', { name: 'Add field', exact: true }).click();
  await expect(page.getByLabel('Item', { exact: true })).toBeVisible();
  expect((await rowKeys()).at(-1)).toBe('Item');
  await page.evaluate(() => window.scrollTo(0, 0)); // both ends of the drag in view: a drag that scrolls is cancelled
  await company.locator('.mapping-row__handle').dragTo(mapping.getByRole('listitem').first());
  await expect.poll(async () => (await rowKeys()).slice(0, 2)).toEqual(['Company', 'Summary']);

  // A token clicked goes where the cursor is; the preview follows, with its length against the maximum.
  const summary = page.getByLabel('Summary', { exact: true });
  await summary.fill('DWID [compromise] ');
  await summary.press('End');
  await page.getByRole('button', { name: '[record_type]' }).click();
  await expect(summary).toHaveValue('DWID [compromise] [record_type]');
  const summaryRow = mapping.getByRole('listitem').filter({ has: summary });
  await expect(summaryRow.locator('.preview__text')).toHaveText('DWID jane.doe@acme-corp.example Email');
  await expect(summaryRow.locator('.preview__counter')).toHaveText('37 / 100');
  // An unknown token is an error on its row, before saving.
  await summary.fill('DWID [compromize]');
  await expect(summaryRow.getByRole('alert')).toContainText('[compromise]');
  await summary.fill('Dark Web ID: [compromise] exposed');
  await shot(page, '24-wizard-5-mapping');

  await page.getByRole('button', { name: 'Save and Submit a Test Compromise' }).click();
  const created = page.getByRole('status').filter({ hasText: 'Test ticket #' });
  await expect(created).toBeVisible();
  const firstId = Number((await created.textContent())!.match(/#(\d+)/)![1]);
  let tickets = await sandboxTickets(page);
  const first = tickets.find((t) => t.id === firstId);
  expect(first.summary).toBe('Dark Web ID: jane.doe@acme-corp.example exposed');
  expect(first.company.name).toBe('Acme Corporation');
  expect(first.externalXRef).toMatch(/^dwid:[0-9a-f-]{36}\/[0-9]+$/);
  await shot(page, '25-wizard-test-created');

  // The table in another tab follows the integration's health by polling, without a reload.
  const table = await context.newPage();
  const tableProblems = watchConsole(table);
  await table.goto('/integrations');
  await hydrated(table);
  const row = table.getByRole('row', { name: /Sandbox PSA/ });
  await expect(row.getByRole('img', { name: 'Healthy' })).toBeVisible();
  // The account's requests this hour, out of the 5,000 an hour set in Advanced settings.
  await expect(row.getByRole('cell').nth(4)).toContainText(/^\d+ \/ 5,000/);

  // Switching the board resets the status of the old one, and says so; the list offers the new board's.
  await page.getByLabel('Board', { exact: true }).selectOption({ label: 'Help Desk' });
  await expect(page.getByRole('status').filter({ hasText: 'Status was reset' })).toContainText(
    'Status was reset: it is not on the board "Help Desk".',
  );
  await expect(page.getByLabel('Status', { exact: true })).toHaveValue('');
  await expect(page.getByLabel('Status', { exact: true }).locator('option')).toHaveText([
    'ConnectWise default',
    'New',
    'In Progress',
    'Waiting on Client',
    'Closed',
  ]);
  await shot(page, '25b-wizard-board-switched');
  await page.getByLabel('Status', { exact: true }).selectOption({ label: 'Waiting on Client' });
  // A status removed in ConnectWise after the lists were loaded: refused, on the Status row; health turns Unhealthy.
  const faults = await page.request.post(`${sandboxURL}/_sandbox/faults`, { data: { removed_statuses: [3] } });
  expect(faults.ok()).toBeTruthy();
  const count = tickets.length;
  await page.getByRole('button', { name: 'Save and Submit a Test Compromise' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'the test ticket was not created' })).toBeVisible();
  const statusRow = mapping.getByRole('listitem').filter({ has: page.getByLabel('Status', { exact: true }) });
  await expect(statusRow.getByRole('alert')).toContainText('Status not found on board.');
  await page.request.post(`${sandboxURL}/_sandbox/faults`, { data: {} });
  await shot(page, '26-wizard-test-rejected');
  expect((await sandboxTickets(page)).length).toBe(count);
  // Switching to the other tab (no reload): browsers pause timers of hidden tabs, and the page polls on view.
  await table.bringToFront();
  await expect(row.getByRole('img', { name: 'Unhealthy' })).toBeVisible({ timeout: 15_000 });
  await row.getByRole('img', { name: 'Unhealthy' }).hover();
  await expect(row.getByRole('tooltip').first()).toContainText('(at ');
  await shot(table, '27-table-unhealthy');

  // Fixed: saved and tested again, and the other tab turns Healthy on its own.
  await page.bringToFront();
  await page.getByLabel('Status', { exact: true }).selectOption({ label: 'In Progress' });
  await page.getByRole('button', { name: 'Save and Submit a Test Compromise' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Test ticket #' })).toBeVisible();
  await table.bringToFront();
  await expect(row.getByRole('img', { name: 'Healthy' })).toBeVisible({ timeout: 15_000 });
  await shot(table, '28-table-healthy');
  tickets = await sandboxTickets(page);
  expect(tickets.length).toBe(count + 1);
  expect(tickets.filter((t) => t.summary === 'Dark Web ID: jane.doe@acme-corp.example exposed').length).toBe(2);

  // Saved once, updated since: one integration of that name, Inactive until enabled.
  await page.bringToFront();
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page).toHaveURL(/\/integrations$/);
  await expect(page.getByRole('row', { name: /Sandbox PSA/ })).toHaveCount(1);
  await expect(page.getByRole('row', { name: /Sandbox PSA/ }).getByText('Inactive')).toBeVisible();

  // Edit reopens the same wizard on the saved integration, keys shown as stored.
  await page.getByRole('row', { name: /Sandbox PSA/ }).getByRole('link', { name: 'Edit' }).click();
  await expect(page).toHaveURL(/\/integrations\/\d+\/edit\/1$/);
  await hydrated(page);
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByRole('textbox', { name: 'Integration name' })).toHaveValue('Sandbox PSA');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByLabel('Private Key')).toHaveValue('');
  await expect(page.getByLabel('Private Key')).toHaveAttribute('placeholder', 'Stored: leave blank to keep');
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByRole('status')).toContainText('Connected to ConnectWise Manage');
  expect(problems.filter((p) => !/status of (400|502)/.test(p))).toEqual([]);
  expect(tableProblems).toEqual([]);
});
