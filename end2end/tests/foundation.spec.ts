import { test, expect } from '@playwright/test';
import { demoEmail, demoPassword, hydrated, shot, signIn, watchConsole } from './helpers';

test('a signed-out visitor is sent to sign in, and a wrong password says only that', async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto('/organizations');
  await expect(page).toHaveURL(/\/sign-in$/);
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Sign in to the Partner Dashboard' })).toBeVisible();
  await shot(page, '01-sign-in');

  await page.getByLabel('Email').fill(demoEmail);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Invalid email or password');
  await expect(page).toHaveURL(/\/sign-in$/);
  await shot(page, '02-sign-in-error');
  expect(problems.filter((p) => !p.includes('400'))).toEqual([]);
});

test('sign in, see the empty Integrations page, sign out', async ({ page }) => {
  const problems = watchConsole(page);
  await signIn(page);
  await expect(page.getByRole('heading', { name: 'Integrations', level: 1 })).toBeVisible();
  await expect(page.getByText('You have not added any integrations.')).toBeVisible();
  await expect(page.getByRole('link', { name: '+ ADD NEW INTEGRATION' })).toBeVisible();
  await shot(page, '03-integrations-empty');

  await page.getByRole('link', { name: '+ ADD NEW INTEGRATION' }).click();
  await expect(page).toHaveURL(/\/integrations\/new\/1$/);
  await expect(page.getByRole('heading', { name: 'Add an integration' })).toBeVisible();

  // A reload is served by the server (SSR) and hydrates without warnings.
  await page.goto('/integrations');
  await hydrated(page);
  await expect(page.getByText('You have not added any integrations.')).toBeVisible();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/sign-in$/);
  await page.goto('/integrations');
  await expect(page).toHaveURL(/\/sign-in$/);
  expect(problems).toEqual([]);
});

test('add, rename and delete an organization', async ({ page }) => {
  const problems = watchConsole(page);
  await signIn(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Organizations' }).click();
  await expect(page).toHaveURL(/\/organizations$/);
  await hydrated(page);
  const table = page.getByRole('table');
  // The demo partner's organizations, sorted.
  await expect(table.getByRole('row')).toHaveCount(6);
  await expect(table.getByRole('row').nth(1)).toContainText('Acme Corporation');
  await expect(page.getByText('5 organizations')).toBeVisible();
  await shot(page, '04-organizations');

  await page.getByLabel('Organization name').fill('  Wayne Enterprises  ');
  await page.getByRole('button', { name: 'Add organization' }).click();
  await expect(page.getByText('6 organizations')).toBeVisible();
  await expect(table.getByRole('cell', { name: 'Wayne Enterprises', exact: true })).toBeVisible();
  await expect(page.getByLabel('Organization name')).toHaveValue('');

  // Duplicates are refused, case-insensitively, with a clear message; nothing changes.
  await page.getByLabel('Organization name').fill('wayne enterprises');
  await page.getByRole('button', { name: 'Add organization' }).click();
  await expect(page.getByRole('alert')).toHaveText('An organization named "wayne enterprises" already exists.');
  await expect(page.getByText('6 organizations')).toBeVisible();
  await shot(page, '05-organization-duplicate');

  await page.getByRole('button', { name: 'Rename Wayne Enterprises' }).click();
  await page.getByLabel('New name for Wayne Enterprises').fill('Wayne Foundation');
  await shot(page, '06-organization-rename');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(table.getByRole('cell', { name: 'Wayne Foundation', exact: true })).toBeVisible();
  await expect(table.getByRole('cell', { name: 'Wayne Enterprises', exact: true })).toHaveCount(0);

  await page.getByRole('button', { name: 'Delete Wayne Foundation' }).click();
  await expect(page.getByText('Delete Wayne Foundation?')).toBeVisible();
  await shot(page, '07-organization-delete-confirm');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(table.getByRole('cell', { name: 'Wayne Foundation', exact: true })).toBeVisible();
  await page.getByRole('button', { name: 'Delete Wayne Foundation' }).click();
  await page.getByRole('button', { name: 'Yes, delete' }).click();
  await expect(page.getByText('5 organizations')).toBeVisible();
  await expect(table.getByRole('cell', { name: 'Wayne Foundation', exact: true })).toHaveCount(0);

  // Data survives a full reload (it is in the database, not the page).
  await page.reload();
  await hydrated(page);
  await expect(page.getByText('5 organizations')).toBeVisible();
  expect(problems.filter((p) => !p.includes('409'))).toEqual([]);
});

test('an unknown address shows the not-found page', async ({ page }) => {
  await signIn(page);
  const response = await page.goto('/no-such-page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
  await shot(page, '08-not-found');
});

test('every page runs and hydrates under the Content-Security-Policy, with the hardened cookie', async ({ page }) => {
  const problems = watchConsole(page);
  // Any script, style or connection the policy blocks is reported by the browser as a violation event.
  await page.addInitScript(() => {
    (window as any).__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      (window as any).__cspViolations.push(`${e.violatedDirective}: ${e.blockedURI}`),
    );
  });
  const response = await page.goto('/sign-in');
  const csp = response?.headers()['content-security-policy'] ?? '';
  expect(csp).toContain("script-src 'self' 'nonce-");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toContain('unsafe-inline');
  expect(response?.headers()['x-content-type-options']).toBe('nosniff');
  await signIn(page);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'dwid_session');
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe('Lax');
  for (const path of ['/integrations', '/organizations', '/settings', '/integrations/new/1']) {
    await page.goto(path);
    await hydrated(page);
    expect(await page.evaluate(() => (window as any).__cspViolations)).toEqual([]);
  }
  // Client-side navigation after hydration (server functions over fetch) is allowed too.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Organizations' }).click();
  await expect(page.getByText(/\d+ organizations/)).toBeVisible();
  expect(await page.evaluate(() => (window as any).__cspViolations)).toEqual([]);
  expect(problems).toEqual([]);
});
