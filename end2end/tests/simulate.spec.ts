import { test, expect, type Page } from '@playwright/test';
import { sandboxURL } from '../playwright.config';
import { createSandboxIntegration, hydrated, sameOrigin, shot, signIn, watchConsole } from './helpers';

async function sandboxTickets(page: Page): Promise<any[]> {
  const response = await page.request.get(`${sandboxURL}/_sandbox/tickets`);
  expect(response.ok()).toBeTruthy();
  return response.json();
}

test('simulate a compromise and watch its ticket arrive in the ConnectWise sandbox', async ({ page }) => {
  test.setTimeout(90_000);
  const problems = watchConsole(page);
  await signIn(page);
  const name = `Simulation desk ${Date.now()}`;
  const id = await createSandboxIntegration(page, name, {
    active: true,
    mapping: [
      { field: 'summary', value: 'Dark Web ID: [compromise] (simulated)' },
      { field: 'company', value: '' },
      { field: 'board', value: '1' },
    ],
  });
  // Only this integration serves Acme Corporation, so exactly one ticket is queued.
  const integrations = await (await page.request.post('/api/integrations/list', { form: {}, headers: sameOrigin })).json();
  const organizations = await (await page.request.post('/api/organizations/list', { form: {}, headers: sameOrigin })).json();
  const acme = organizations.find((o: any) => o.name === 'Acme Corporation');
  const others = integrations.filter((i: any) => i.id !== id && i.active && acme.integration_ids.includes(i.id));
  const before = (await sandboxTickets(page)).filter((t) => t.company?.name === 'Acme Corporation').length;

  await page.goto('/organizations');
  await hydrated(page);
  const row = page.getByRole('row', { name: /Acme Corporation/ }).first();
  const reply = page.waitForResponse((r) => r.url().includes('/api/organizations/simulate'));
  await page.getByRole('button', { name: 'Simulate a compromise for Acme Corporation' }).click();
  expect((await reply).status()).toBe(200);
  const queued = others.length + 1;
  const message = page.getByRole('status').filter({ hasText: 'Compromise imported' });
  await expect(message).toContainText(
    `Compromise imported: ${queued} ticket${queued === 1 ? '' : 's'} queued (one per enabled integration).`,
  );
  const link = message.getByRole('link', { name: /arrive in the ConnectWise sandbox/ });
  await expect(link).toHaveAttribute('href', `${sandboxURL}/`);
  await expect(link).toHaveAttribute('target', '_blank');
  await expect(row).toBeVisible();
  await shot(page, '44-organizations-simulated');

  // The delivery worker turns it into a ticket for Acme Corporation's company.
  await expect
    .poll(
      async () => (await sandboxTickets(page)).filter((t) => t.company?.name === 'Acme Corporation').length,
      { timeout: 20_000, intervals: [250, 500, 1000] },
    )
    .toBeGreaterThanOrEqual(before + queued);
  const tickets = await sandboxTickets(page);
  expect(
    tickets.some(
      (t) =>
        t.company?.name === 'Acme Corporation' &&
        t.summary === 'Dark Web ID: jane.doe@acme-corporation.example (simulated)',
    ),
  ).toBeTruthy();

  // An organization no enabled integration serves: imported, and the message says why nothing was queued.
  await page.request.post('/api/integrations/set_active', { form: { id: String(id), active: 'false' }, headers: sameOrigin });
  const idle = organizations.find(
    (o: any) => !integrations.some((i: any) => i.id !== id && i.active && o.integration_ids.includes(i.id)),
  );
  if (idle) {
    await page.reload();
    await hydrated(page);
    await page.getByRole('button', { name: `Simulate a compromise for ${idle.name}` }).click();
    const warning = page.getByRole('status').filter({ hasText: 'no ticket was queued' });
    await expect(warning).toContainText(
      'No enabled integration is associated with this organization: enable one on the Integrations page',
    );
    await shot(page, '45-organizations-simulated-none');
    await warning.getByRole('button', { name: 'Dismiss' }).click();
    await expect(warning).toHaveCount(0);
  }

  // Leave no enabled integration behind for the specs that count tickets.
  const removed = await page.request.post('/api/integrations/remove', { form: { id: String(id) }, headers: sameOrigin });
  expect(removed.status()).toBe(200);
  expect(problems).toEqual([]);
});
