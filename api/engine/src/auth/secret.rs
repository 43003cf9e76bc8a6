//! The signing secret: configured, or generated once per machine for development so that
//! `scrm token` and `scrm serve` agree without anyone choosing a weak shared default.

use std::io::Write;
use std::path::Path;

use rand::RngCore;

/// Shortest secret accepted for HS256 (the key should be as long as the hash).
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the JWT secret must be at least {MIN_SECRET_BYTES} bytes")]
    TooShort,
    #[error("cannot read or create {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// `configured` when given; otherwise the secret in `path`, created (mode 0600) with 32
/// random bytes if it does not exist yet.
pub fn load_or_create_secret(configured: Option<&str>, path: &Path) -> Result<String, SecretError> {
    let io = |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(secret) = configured.filter(|s| !s.is_empty()) {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort);
        }
        return Ok(secret.to_string());
    }
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_string();
        if existing.len() >= MIN_SECRET_BYTES {
            return Ok(existing);
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(secret.as_bytes()).map_err(io)?;
    Ok(secret)
}
