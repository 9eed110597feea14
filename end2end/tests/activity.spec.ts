import { test, expect } from '@playwright/test';
import { demoEmail, hydrated, shot, signIn, watchConsole } from './helpers';

// The demo partner is shared by every spec: the organization added here is deleted again, so the others still see
// the demo data as seeded. Both changes stay on the Activity page, which is what this spec looks at.
test('sign-ins and changes appear on the Activity page, newest first, filtered by kind', async ({ page }) => {
  const problems = watchConsole(page);
  const name = `Activity Spec ${Date.now()}`;
  await signIn(page);

  // An action, done through the page.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Organizations' }).click();
  await hydrated(page);
  await page.getByLabel('Organization name').fill(name);
  await page.getByRole('button', { name: 'Add organization' }).click();
  const orgs = page.getByRole('table');
  await expect(orgs.getByRole('cell', { name, exact: true })).toBeVisible();
  await page.getByRole('button', { name: `Delete ${name}` }).click();
  await page.getByRole('button', { name: 'Yes, delete' }).click();
  await expect(orgs.getByRole('cell', { name, exact: true })).toHaveCount(0);

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Activity' }).click();
  await expect(page).toHaveURL(/\/activity$/);
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Activity', level: 1 })).toBeVisible();
  const table = page.getByRole('table');
  await expect(table.getByRole('columnheader')).toHaveText(['When', 'Who', 'What', 'Address']);
  // Newest first: the deletion, then the addition, then (a row or more further down) this sign-in.
  const rows = table.locator('tbody tr');
  await expect(rows.nth(0)).toContainText(`Deleted the organization “${name}”.`);
  await expect(rows.nth(1)).toContainText(`Added the organization “${name}”.`);
  await expect(rows.nth(0)).toContainText(demoEmail);
  await expect(rows.nth(0)).toContainText(/\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
  await expect(rows.nth(0).locator('td').nth(3)).toHaveText('127.0.0.1');
  await expect(table.getByRole('row', { name: /Signed in\./ }).first()).toBeVisible();
  await shot(page, '60-activity');

  // Filter by kind: the select applies itself after hydration, and the choice is in the URL.
  await page.getByLabel('Show').selectOption({ label: 'Successful sign-ins' });
  await expect(page).toHaveURL(/\/activity\?kind=sign_in\.succeeded$/);
  await expect(rows.first()).toContainText('Signed in.');
  await expect(table.getByText(name)).toHaveCount(0);
  await expect(rows.filter({ hasNotText: 'Signed in.' })).toHaveCount(0);
  await shot(page, '61-activity-sign-ins');

  // The same filter as a plain GET form (what a browser without JavaScript submits), and a reload keeps it.
  await page.goto('/activity?kind=organization');
  await hydrated(page);
  await expect(page.getByLabel('Show')).toHaveValue('organization');
  await expect(rows.nth(0)).toContainText(`Deleted the organization “${name}”.`);
  await expect(rows.filter({ hasText: 'Signed in.' })).toHaveCount(0);
  await page.getByLabel('Show').selectOption({ label: 'All activity' });
  await expect(page).toHaveURL(/\/activity$/);
  await expect(rows.nth(0)).toContainText(`Deleted the organization “${name}”.`);

  expect(problems).toEqual([]);
});
