import { defineConfig } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

// The tests run against the built release server (target/release/server serving target/site), started here on its
// own port with a fresh SQLite database, in Debian's Chromium. `make test` builds both first.
const port = Number(process.env.E2E_PORT ?? 3100);
// The ConnectWise sandbox the server runs in-process (dev mode), on a port of its own.
export const sandboxURL = `http://127.0.0.1:${port + 5}`;
// The Autotask sandbox, likewise (zone discovery asks it in dev mode).
export const autotaskSandboxURL = `http://127.0.0.1:${port + 6}`;
export const baseURL = `http://127.0.0.1:${port}`;
export const demoEmail = 'demo@partner.example';
export const demoPassword = process.env.DEMO_PASSWORD ?? 'e2e-demo-password-42';
const dataDir = process.env.E2E_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'dwid-e2e-'));
const root = path.resolve(__dirname, '..');

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list'], ['json', { outputFile: 'test-results/results.json' }]],
  outputDir: 'test-results/artifacts',
  use: {
    baseURL,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: {
    command: `${root}/target/release/server`,
    cwd: root,
    url: `${baseURL}/healthz`,
    timeout: 60_000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe',
    env: {
      APP_MODE: 'dev',
      DATA_DIR: dataDir,
      DEMO_PASSWORD: demoPassword,
      LEPTOS_SITE_ROOT: `${root}/target/site`,
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LOG_LEVEL: 'info,tower_http=warn',
      CW_SANDBOX_ADDR: `127.0.0.1:${port + 5}`,
      AT_SANDBOX_ADDR: `127.0.0.1:${port + 6}`,
    },
  },
});
