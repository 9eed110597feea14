//! The secrets key: 32 random bytes (hex) that encrypt the ConnectWise credentials partners store.
//!
//! A first dev run generates it into the data directory; production refuses to start without one, because a key
//! generated on the fly would be lost with the machine and every stored secret with it.

use std::io::Write;
use std::path::Path;

use app::config::{Config, Mode};

pub const KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the secrets key file {0} does not exist; production needs one (create it with `openssl rand -hex 32 > FILE` \
         and set SECRETS_KEY_FILE)"
    )]
    Missing(String),
    #[error("the secrets key file {path} must hold {KEY_BYTES} bytes written as {} hex digits", KEY_BYTES * 2)]
    Malformed { path: String },
    #[error(
        "the secrets key file {path} can be read by other users (mode {mode:o}); production refuses it: run \
         `chmod 600 {path}` (owned by the user the server runs as)"
    )]
    Exposed { path: String, mode: u32 },
    #[error("could not read or write the secrets key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Reads the key, generating it first in dev mode when the file is missing.
pub fn load_or_create(config: &Config) -> Result<[u8; KEY_BYTES], KeyError> {
    let path = &config.secrets_key_file;
    if !path.exists() {
        if config.mode == Mode::Production {
            return Err(KeyError::Missing(path.display().to_string()));
        }
        create(path)?;
        tracing::info!(path = %path.display(), "generated a new secrets key (dev mode)");
    }
    if config.mode == Mode::Production {
        check_private(path)?;
    }
    read(path)
}

/// Production keeps the key readable by its owner only: a key any local user can read opens every stored secret.
fn check_private(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(io_error(path))?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed { path: path.display().to_string(), mode });
        }
    }
    Ok(())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.display().to_string(), source }
}

fn create(path: &Path) -> Result<(), KeyError> {
    use rand::RngCore;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        app::db::create_private_dir(dir).map_err(io_error(path))?;
    }
    let mut key = [0u8; KEY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io_error(path))?;
    writeln!(file, "{}", hex::encode(key)).map_err(io_error(path))
}

fn read(path: &Path) -> Result<[u8; KEY_BYTES], KeyError> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Malformed { path: path.display().to_string() })?;
    bytes.try_into().map_err(|_| KeyError::Malformed { path: path.display().to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, mode: &str) -> Config {
        let dir = dir.display().to_string();
        Config::from_lookup(|name| match name {
            "APP_MODE" => Some(mode.to_string()),
            "DATA_DIR" => Some(dir.clone()),
            _ => None,
        })
        .expect("config")
    }

    #[test]
    fn dev_generates_a_key_once_and_reuses_it() {
        let dir = tempdir();
        let first = load_or_create(&config(&dir, "dev")).expect("generated");
        let second = load_or_create(&config(&dir, "dev")).expect("read back");
        assert_eq!(first, second);
        assert_ne!(first, [0u8; KEY_BYTES]);
    }

    #[test]
    fn production_refuses_to_start_without_a_key() {
        let dir = tempdir();
        let err = load_or_create(&config(&dir, "production")).expect_err("missing key");
        assert!(matches!(err, KeyError::Missing(_)));
        assert!(!dir.join("secrets.key").exists(), "production must not invent a key");
    }

    #[cfg(unix)]
    #[test]
    fn production_refuses_a_key_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir();
        let dev = config(&dir, "dev");
        load_or_create(&dev).expect("generated");
        let file = dir.join("secrets.key");
        assert_eq!(std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777, 0o600);
        load_or_create(&config(&dir, "production")).expect("0600 is fine");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = load_or_create(&config(&dir, "production")).expect_err("group-readable");
        assert!(matches!(err, KeyError::Exposed { mode: 0o640, .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        // Dev mode (a developer's own machine) does not check.
        load_or_create(&dev).expect("dev");
    }

    #[test]
    fn a_malformed_key_is_refused() {
        let dir = tempdir();
        std::fs::write(dir.join("secrets.key"), "not hex").expect("write");
        assert!(matches!(load_or_create(&config(&dir, "dev")), Err(KeyError::Malformed { .. })));
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("dwid-keys-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
