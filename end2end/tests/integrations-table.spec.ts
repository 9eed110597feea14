import { test, expect } from '@playwright/test';
import { createIntegration, hydrated, shot, signIn, watchConsole } from './helpers';

test('the Integrations table: status, operations, organization count and hover list', async ({ page }) => {
  const problems = watchConsole(page);
  await signIn(page);
  await createIntegration(page, 'ConnectWise Production');
  await createIntegration(page, 'ConnectWise EU');
  await page.goto('/integrations');
  await hydrated(page);

  const table = page.getByRole('table');
  for (const header of ['Name', 'System', 'Status', 'Health', 'Organizations', 'Operations']) {
    await expect(table.getByRole('columnheader', { name: header })).toBeVisible();
  }
  const row = table.getByRole('row', { name: /ConnectWise Production/ });
  await expect(row.getByRole('cell').nth(1)).toHaveText('ConnectWise');
  await expect(row.getByText('Inactive')).toBeVisible();
  await expect(row.getByRole('img', { name: 'Not checked' })).toBeVisible();
  await expect(row.getByRole('button', { name: 'Enable' })).toBeVisible();
  await expect(row.getByRole('link', { name: 'Edit' })).toBeVisible();
  await expect(row.getByRole('button', { name: 'Remove' })).toBeVisible();

  // Every demo organization is associated with a new integration; hover lists them.
  const count = row.getByLabel('5 organizations');
  await expect(count).toHaveText(/5/);
  await count.hover();
  const tooltip = row.getByRole('tooltip').filter({ hasText: 'Acme Corporation' });
  await expect(tooltip).toBeVisible();
  await expect(tooltip.getByRole('listitem')).toHaveText([
    'Acme Corporation', 'Globex Inc', 'Initech', 'Stark Industries', 'Umbrella Health',
  ]);
  await shot(page, '10-integrations-table-hover');

  await row.getByRole('button', { name: 'Enable' }).click();
  await expect(row.getByText('Active', { exact: true })).toBeVisible();
  await expect(row.getByRole('button', { name: 'Disable' })).toBeVisible();
  await shot(page, '11-integrations-table-active');
  await row.getByRole('button', { name: 'Disable' }).click();
  await expect(row.getByText('Inactive')).toBeVisible();

  const eu = table.getByRole('row', { name: /ConnectWise EU/ });
  await eu.getByRole('button', { name: 'Remove' }).click();
  await expect(eu.getByText('Remove ConnectWise EU? Its stored keys are deleted.')).toBeVisible();
  // The table refreshes by polling; the question stays open through a refresh.
  await page.waitForResponse((r) => r.url().includes('/api/integrations/list'));
  await expect(eu.getByText('Remove ConnectWise EU? Its stored keys are deleted.')).toBeVisible();
  await shot(page, '12-integrations-remove-confirm');
  await eu.getByRole('button', { name: 'Yes, remove' }).click();
  await expect(table.getByRole('row', { name: /ConnectWise EU/ })).toHaveCount(0);
  await page.reload();
  await hydrated(page);
  await expect(page.getByRole('table').getByRole('row')).toHaveCount(2);
  expect(problems).toEqual([]);
});

test('organizations: a new one gets every integration ticked, and boxes save at once', async ({ page }) => {
  const problems = watchConsole(page);
  await signIn(page);
  await createIntegration(page, 'CW Org Test');
  await page.goto('/organizations');
  await hydrated(page);

  const choices = page.getByRole('group', { name: 'Integrations', exact: true });
  await expect(choices.getByLabel('CW Org Test')).toBeChecked();
  await page.getByLabel('Organization name').fill('Wayne Enterprises');
  await page.getByRole('button', { name: 'Add organization' }).click();
  const row = page.getByRole('row', { name: /Wayne Enterprises/ });
  await expect(row.getByLabel('CW Org Test')).toBeChecked();
  await shot(page, '13-organizations-integrations');

  const saved = page.waitForResponse((r) => r.url().includes('/api/integrations/associate') && r.ok());
  await row.getByLabel('CW Org Test').uncheck();
  await saved;
  await page.goto('/integrations');
  await hydrated(page);
  const integration = page.getByRole('row', { name: /CW Org Test/ });
  await integration.getByLabel(/organizations/).hover();
  await expect(integration.getByRole('tooltip')).not.toContainText('Wayne Enterprises');
  await expect(integration.getByRole('tooltip')).toContainText('Acme Corporation');
  expect(problems).toEqual([]);
});
