//! The development signing secret shared by `omni up` and `omni token mint`.
//!
//! `JWT_HS256_SECRET` wins; otherwise `omni up` keeps a generated secret in a file under its data
//! directory, so tokens minted earlier stay valid across restarts and `omni token mint` on the
//! same machine signs tokens the running services accept — without the secret ever being printed.

use std::io::Write;
use std::path::{Path, PathBuf};

use omni_platform::config::Secret;

/// File name of the generated secret inside the data directory.
pub const FILE_NAME: &str = "jwt-secret";

/// Shortest secret the services accept (`TokenVerifier::from_env`).
const MIN_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("JWT_HS256_SECRET must be at least {MIN_LEN} characters")]
    TooShort,
    #[error(
        "no signing secret: set JWT_HS256_SECRET, or start `omni up` once so {0} exists \
         (or point --secret-file at it)"
    )]
    Missing(PathBuf),
    #[error("secret file {path}: {error}")]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
}

pub fn file_in(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The secret for `omni up`: the given one, else the file's, else a new one written to the file.
pub fn load_or_create(given: Option<&str>, file: &Path) -> Result<Secret, SecretError> {
    if let Some(secret) = load(given, file)? {
        return Ok(secret);
    }
    let secret = omni_platform::auth::random_secret();
    write_private(file, &secret).map_err(|error| SecretError::File {
        path: file.to_owned(),
        error,
    })?;
    Ok(Secret::new(secret))
}

/// The secret for `omni token mint`: the given one, else the file's; never a new one, since a
/// token signed with a secret no service knows is useless.
pub fn load_existing(given: Option<&str>, file: &Path) -> Result<Secret, SecretError> {
    load(given, file)?.ok_or_else(|| SecretError::Missing(file.to_owned()))
}

fn load(given: Option<&str>, file: &Path) -> Result<Option<Secret>, SecretError> {
    if let Some(secret) = given.map(str::trim).filter(|s| !s.is_empty()) {
        return if secret.len() < MIN_LEN {
            Err(SecretError::TooShort)
        } else {
            Ok(Some(Secret::new(secret)))
        };
    }
    match std::fs::read_to_string(file) {
        Ok(text) if text.trim().len() >= MIN_LEN => Ok(Some(Secret::new(text.trim()))),
        Ok(_) => Err(SecretError::File {
            path: file.to_owned(),
            error: std::io::Error::other(format!("holds fewer than {MIN_LEN} characters")),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(SecretError::File {
            path: file.to_owned(),
            error,
        }),
    }
}

/// Readable by its owner only: the file signs admin tokens.
fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file() -> PathBuf {
        std::env::temp_dir()
            .join(format!("omni-secret-{}", uuid::Uuid::new_v4().simple()))
            .join(FILE_NAME)
    }

    #[test]
    fn a_generated_secret_is_kept_and_reused() {
        let file = temp_file();
        assert!(matches!(
            load_existing(None, &file),
            Err(SecretError::Missing(_))
        ));
        let first = load_or_create(None, &file).unwrap();
        let again = load_or_create(None, &file).unwrap();
        assert_eq!(first.expose(), again.expose());
        assert_eq!(load_existing(None, &file).unwrap().expose(), first.expose());
        if let Some(dir) = file.parent() {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn the_environment_wins_and_must_be_long_enough() {
        let file = temp_file();
        let given = "x".repeat(40);
        assert_eq!(load_or_create(Some(&given), &file).unwrap().expose(), given);
        assert!(!file.exists(), "a given secret is not written anywhere");
        assert!(matches!(
            load_or_create(Some("short"), &file),
            Err(SecretError::TooShort)
        ));
    }
}
