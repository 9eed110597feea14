//! The demo Autotask account: the one place the Autotask sandbox's default credentials are defined. The sandbox
//! (`server autotask-sandbox`) accepts them by default and prints them at start. Never valid against a real Autotask.

/// Where the sandbox listens by default (`--port`), and what `AUTOTASK_ZONE_DISCOVERY_URL` points at to use it.
pub const DEMO_SANDBOX_ADDR: &str = "127.0.0.1:3006";
/// The API user (Autotask's user names look like email addresses).
pub const DEMO_USERNAME: &str = "dwid-api@demo-msp.example";
pub const DEMO_SECRET: &str = "DemoAutotaskSecret789";
/// The API tracking identifier (27 characters, as Autotask's).
pub const DEMO_INTEGRATION_CODE: &str = "DWIDDEMOTRACKINGIDENTIFIER1";
/// A second API user of the same database whose security level may read companies but not tickets.
pub const DEMO_RESTRICTED_USERNAME: &str = "dwid-readonly@demo-msp.example";
/// The zone name discovery answers.
pub const DEMO_ZONE_NAME: &str = "Sandbox";
