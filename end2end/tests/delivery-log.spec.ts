import { test, expect, type Page } from '@playwright/test';
import { randomUUID } from 'crypto';
import { sandboxURL } from '../playwright.config';
import { createSandboxIntegration, hydrated, sameOrigin, shot, signIn, watchConsole } from './helpers';

// Names unique to this run, so the test neither sees nor disturbs what other spec files create.
const run = Date.now().toString(36);
const integrationName = `Delivery Log ${run}`;
// A company the sandbox has ("Cyberdyne Systems") that no demo organization is named after; the organization
// starts with a name that matches no company, so its deliveries Fail until it is renamed.
const unmatchedName = `Cyberdyne Systems ${run}`;

const api = (page: Page, path: string, form: Record<string, string>) =>
  page.request.post(path, { form, headers: { Accept: 'application/json', ...sameOrigin } });

async function ok(response: Awaited<ReturnType<Page['request']['post']>>) {
  expect(response.status(), await response.text()).toBe(200);
  return response;
}

function record(organization: string, compromise: string) {
  return {
    uuid: randomUUID(),
    record_type: 'Email',
    source: 'Combolist',
    organization_name: organization,
    compromise,
    password_criteria: 'N/A',
    search_value: compromise.split('@')[1],
    date_added: '2026-03-14T09:26:53Z',
    date_found: '2026-03-12T00:00:00Z',
  };
}

/** Imports records through the public API with a token created for the signed-in partner. */
async function importCompromises(page: Page, token: string, records: object[]) {
  const response = await page.request.post('/api/v1/compromises', {
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/x-ndjson' },
    data: records.map((r) => JSON.stringify(r)).join('\n') + '\n',
  });
  expect(response.status(), await response.text()).toBe(200);
  return response.json();
}

async function setFaults(page: Page, faults: object) {
  const response = await page.request.post(`${sandboxURL}/_sandbox/faults`, { data: faults });
  expect(response.ok(), await response.text()).toBeTruthy();
}

test('the Delivery log follows deliveries live, filters by state and organization, and retries failures', async ({
  page,
}) => {
  test.setTimeout(120_000);
  const problems = watchConsole(page);
  await signIn(page);
  const id = await createSandboxIntegration(page, integrationName);
  const created = await (await ok(await api(page, '/api/api-tokens/create', { name: `E2E ${run}` }))).json();
  const token: string = created.value;
  expect(token).toMatch(/^dwid_/);
  // An organization for this test only, associated with this integration only.
  const organization = await (
    await ok(
      await api(page, '/api/organizations/add', {
        name: unmatchedName,
        choose_integrations: 'true',
        'integration_ids[0]': String(id),
      }),
    )
  ).json();

  try {
    // From the Integrations table: the link opens the log; the integration is still disabled.
    await page.goto('/integrations');
    await hydrated(page);
    const integrationRow = page.getByRole('row', { name: new RegExp(integrationName) });
    await integrationRow.getByRole('link', { name: 'Delivery log' }).click();
    await expect(page).toHaveURL(new RegExp(`/integrations/${id}/deliveries$`));
    await hydrated(page);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(`Delivery log · ${integrationName}`);
    await expect(page).toHaveTitle(`Delivery log · ${integrationName} · Dark Web ID Partner Dashboard`);
    await expect(page.getByText('This integration is disabled: its pending deliveries are Paused')).toBeVisible();
    await expect(page.getByText('No deliveries yet.')).toBeVisible();
    await expect(page.getByText(/appear here once the integration is enabled/)).toBeVisible();
    await expect(page.getByRole('button', { name: 'Retry all failed (0)' })).toBeDisabled();
    await shot(page, '30-delivery-log-empty');

    // Enable it on the Integrations table, and come back through the link.
    await page.getByRole('link', { name: 'Integrations' }).first().click();
    await expect(page).toHaveURL(/\/integrations$/);
    await integrationRow.getByRole('button', { name: 'Enable' }).click();
    await expect(integrationRow.getByText('Active', { exact: true })).toBeVisible();
    await integrationRow.getByRole('link', { name: 'Delivery log' }).click();
    await expect(page).toHaveURL(new RegExp(`/integrations/${id}/deliveries$`));
    await expect(page.getByText('This integration is disabled')).toHaveCount(0);
    await expect(page.getByText('No deliveries yet.')).toBeVisible();
    // Marks this document: if the page reloaded, the mark would be gone.
    await page.evaluate(() => ((window as any).__deliveryLogMark = true));

    // Three compromises of Acme Corporation (a sandbox company of exactly that name) arrive while the page is open.
    const emails = ['alice', 'bob', 'carol'].map((n) => `${n}.${run}@acme-corp.example`);
    const summary = await importCompromises(page, token, emails.map((e) => record('Acme Corporation', e)));
    expect(summary.imported).toBe(3);
    await page.bringToFront();
    const table = page.getByRole('table');
    for (const email of emails) {
      const row = table.getByRole('row', { name: new RegExp(email.replace(/\./g, '\\.')) });
      await expect(row.getByText('Delivered', { exact: true })).toBeVisible({ timeout: 15_000 });
      await expect(row.getByText(/^Ticket #\d+$/)).toBeVisible();
      await expect(row.getByRole('cell').nth(1)).toHaveText('Acme Corporation');
      await expect(row.getByRole('cell').nth(3)).toHaveText('1');
    }
    await expect(table.getByRole('row', { name: new RegExp(emails[0]) })).toContainText('Email');
    const chips = page.getByRole('list', { name: 'Filter by state' });
    await expect(chips.getByRole('link', { name: /^All/ })).toHaveText('All 3');
    await expect(chips.getByRole('link', { name: /^Delivered/ })).toHaveText('Delivered 3');
    expect(await page.evaluate(() => (window as any).__deliveryLogMark)).toBe(true);
    await shot(page, '31-delivery-log-delivered');

    // A chip filters, and the filter is in the address.
    await chips.getByRole('link', { name: /^Delivered/ }).click();
    await expect(page).toHaveURL(new RegExp(`/integrations/${id}/deliveries\\?state=delivered$`));
    await expect(chips.getByRole('link', { name: /^Delivered/ })).toHaveAttribute('aria-current', 'true');
    await expect(table.getByRole('row')).toHaveCount(4);
    await chips.getByRole('link', { name: /^Failed/ }).click();
    await expect(page).toHaveURL(/\?state=failed$/);
    await expect(page.getByText('No deliveries match this filter.')).toBeVisible();
    await chips.getByRole('link', { name: /^Delivered/ }).click();
    await expect(table.getByRole('row')).toHaveCount(4);
    await shot(page, '32-delivery-log-filtered');

    // A transient ConnectWise error: the delivery is Retrying, with its next attempt, until the sandbox recovers.
    await chips.getByRole('link', { name: /^All/ }).click();
    await expect(page).toHaveURL(new RegExp(`/integrations/${id}/deliveries$`));
    await setFaults(page, { error_rate: 1.0 });
    const flaky = `dave.${run}@acme-corp.example`;
    await importCompromises(page, token, [record('Acme Corporation', flaky)]);
    const flakyRow = table.getByRole('row', { name: new RegExp(flaky.replace(/\./g, '\\.')) });
    await expect(flakyRow.getByText('Retrying', { exact: true })).toBeVisible({ timeout: 15_000 });
    await expect(flakyRow.getByText(/^next attempt \d{4}-\d\d-\d\d \d\d:\d\d UTC$/)).toBeVisible();
    await expect(flakyRow.getByRole('cell').nth(4)).not.toHaveText('—');
    await shot(page, '33-delivery-log-retrying');
    await setFaults(page, {});
    await expect(flakyRow.getByText('Delivered', { exact: true })).toBeVisible({ timeout: 30_000 });

    // Two compromises of an organization no ConnectWise company is named after: they Fail, with the reason.
    const failing = ['erin', 'frank'].map((n) => `${n}.${run}@cyberdyne.example`);
    await importCompromises(page, token, failing.map((e) => record(unmatchedName, e)));
    await expect(chips.getByRole('link', { name: /^Failed/ })).toHaveText('Failed 2', { timeout: 15_000 });
    const erin = table.getByRole('row', { name: new RegExp(failing[0].replace(/\./g, '\\.')) });
    await expect(erin.getByText('Failed', { exact: true })).toBeVisible();
    await expect(erin).toContainText(`No ConnectWise company is named exactly "${unmatchedName}"`);
    await expect(page.getByRole('button', { name: 'Retry all failed (2)' })).toBeEnabled();
    await shot(page, '34-delivery-log-failed');

    // Retry one: it is tried again (a second attempt) and, still unmatched, counted as Failed again.
    await erin.getByRole('button', { name: 'Retry' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'queued for another attempt' })).toBeVisible();
    await expect(erin.getByRole('cell').nth(3)).toHaveText('2', { timeout: 15_000 });
    await expect(erin.getByText('Failed', { exact: true })).toBeVisible();
    await expect(chips.getByRole('link', { name: /^Failed/ })).toHaveText('Failed 2');

    // Filter by the organization (the select), then fix the name and retry them all.
    await page.getByLabel('Organization', { exact: true }).selectOption({ label: unmatchedName });
    await expect(page).toHaveURL(new RegExp(`\\?organization=${organization.id}$`));
    await expect(table.getByRole('row')).toHaveCount(3);
    await ok(await api(page, '/api/organizations/rename', { id: String(organization.id), name: 'Cyberdyne Systems' }));
    await page.reload(); // the filter survives a reload
    await hydrated(page);
    await expect(page.getByLabel('Organization', { exact: true })).toHaveValue(String(organization.id));
    await expect(table.getByRole('row')).toHaveCount(3);
    await page.getByRole('button', { name: 'Retry all failed (2)' }).click();
    await expect(page.getByRole('status').filter({ hasText: '2 failed deliveries are queued' })).toBeVisible();
    for (const email of failing) {
      const row = table.getByRole('row', { name: new RegExp(email.replace(/\./g, '\\.')) });
      await expect(row.getByText('Delivered', { exact: true })).toBeVisible({ timeout: 15_000 });
      await expect(row.getByText(/^Ticket #\d+$/)).toBeVisible();
    }
    await expect(chips.getByRole('link', { name: /^Failed/ })).toHaveText('Failed 0');
    await expect(page.getByRole('button', { name: 'Retry all failed (0)' })).toBeDisabled();
    await shot(page, '35-delivery-log-retried');

    // Older deliveries come a page (50) at a time with "Load older", and stay there through refreshes.
    await page.getByLabel('Organization', { exact: true }).selectOption({ label: 'All organizations' });
    await expect(page).toHaveURL(new RegExp(`/integrations/${id}/deliveries$`));
    const many = Array.from({ length: 50 }, (_, i) => record('Acme Corporation', `user${i}.${run}@acme-corp.example`));
    await importCompromises(page, token, many);
    await expect(chips.getByRole('link', { name: /^Delivered/ })).toHaveText('Delivered 56', { timeout: 20_000 });
    await expect(table.getByRole('row')).toHaveCount(51);
    await page.getByRole('button', { name: 'Load older' }).click();
    await expect(table.getByRole('row')).toHaveCount(57);
    await expect(page.getByRole('button', { name: 'Load older' })).toHaveCount(0);
    await expect(table.getByRole('row', { name: new RegExp(emails[0].replace(/\./g, '\\.')) })).toBeVisible();
    // The next refresh asks for both pages again (the second one after the first's last row).
    await page.waitForResponse(
      (r) => r.url().includes('/api/deliveries/log') && (r.request().postData() ?? '').includes('before_id'),
    );
    await page.waitForTimeout(300);
    await expect(table.getByRole('row')).toHaveCount(57);
    expect(problems).toEqual([]);
  } finally {
    await setFaults(page, {});
    await api(page, '/api/integrations/remove', { id: String(id) });
    await api(page, '/api/organizations/delete', { id: String(organization.id) });
    await api(page, '/api/api-tokens/revoke', { id: String(created.token.id) });
  }
});
