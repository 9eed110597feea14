//! The demo ConnectWise account: the one place the sandbox's default credentials are defined. The sandbox
//! (`server cw-sandbox`) accepts them by default, dev mode's configuration sends the client ID, and the demo data
//! and the README show them to a newcomer. Never valid against a real ConnectWise.

/// Where dev mode starts the sandbox (`CW_SANDBOX_ADDR`).
pub const DEMO_SANDBOX_ADDR: &str = "127.0.0.1:3005";
/// The login company ID.
pub const DEMO_COMPANY_ID: &str = "dwid_demo";
/// The API member's public and private key.
pub const DEMO_PUBLIC_KEY: &str = "DemoPublicKey123";
pub const DEMO_PRIVATE_KEY: &str = "DemoPrivateKey456";
/// The integrator login (the wizard's "username/password" choice).
pub const DEMO_INTEGRATOR_USERNAME: &str = "dwid-integrator";
pub const DEMO_INTEGRATOR_PASSWORD: &str = "DemoIntegratorPass789";
/// The `clientId` header the sandbox expects (a vendor's registered client ID on a real ConnectWise).
pub const DEMO_CLIENT_ID: &str = "0b4c2f1e-6d3a-4f6e-9a8b-d4c5e6f7a8b9";
