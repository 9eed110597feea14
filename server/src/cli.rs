//! Operator commands beside `serve`: API tokens and file imports.

use std::path::Path;
use std::time::Instant;

use app::auth::store::{Partner, partner_by_email};
use app::compromises::{ImportError, Limits};
use app::config::Config;
use app::db::Db;

/// Records per transaction when importing a file: a killed import leaves whole chunks, and running it again
/// imports only the rest (records already imported are no-ops).
pub const FILE_CHUNK: usize = 1_000;
/// The largest file `import` reads.
pub const MAX_FILE_BYTES: usize = 1 << 30;
/// Validation errors printed before "… and N more".
const ERRORS_SHOWN: usize = 50;

async fn partner(db: &Db, email: &str) -> Result<Partner, String> {
    partner_by_email(db, email).await.map_err(|err| err.to_string())?.ok_or_else(|| {
        format!("there is no partner with the email {email:?} (create one with `server create-partner`)")
    })
}

/// Prints the new token on standard output (alone, for scripts) and what it is on standard error.
pub async fn create_api_token(config: Config, email: &str, name: &str) -> Result<(), String> {
    let name = app::api_tokens::validate_name(name)?;
    let db = Db::connect(&config.database_url, 2).await.map_err(|err| err.to_string())?;
    let partner = partner(&db, email).await?;
    let (token, value) = app::api_tokens::store::create(
        &db,
        partner.id,
        &name,
        &app::activity::Actor::operator("server create-api-token"),
    )
    .await
    .map_err(|err| err.to_string())?;
    eprintln!(
        "Created API token \"{}\" ({}…) for {}. It is shown only this once; revoke it under Settings.",
        token.name, token.prefix, partner.email
    );
    println!("{value}");
    Ok(())
}

pub async fn import(config: Config, email: &str, file: &Path) -> Result<(), String> {
    let started = Instant::now();
    let body = std::fs::read(file).map_err(|err| format!("cannot read {}: {err}", file.display()))?;
    if body.len() > MAX_FILE_BYTES {
        return Err(format!("{} is larger than 1 GiB: split it", file.display()));
    }
    let limits = Limits { max_records: usize::MAX, max_body_bytes: MAX_FILE_BYTES };
    let records = match app::compromises::parse_file(&file.to_string_lossy(), &body, &limits) {
        Ok(records) => records,
        Err(ImportError::Invalid(errors)) => {
            print_errors(&errors);
            return Err(format!(
                "{} has {} invalid record(s); nothing was imported. Fix them and run the import again.",
                file.display(),
                errors.total()
            ));
        }
        Err(err) => return Err(format!("{}: {err}; nothing was imported", file.display())),
    };
    let db = Db::connect(&config.database_url, 2).await.map_err(|err| err.to_string())?;
    let key = crate::keys::load_or_create(&config).map_err(|err| err.to_string())?;
    let secrets = app::secrets::SecretBox::new(&key);
    let partner = partner(&db, email).await?;
    match app::compromises::store::check_organizations(&db, partner.id, &records).await {
        Ok(()) => {}
        Err(app::compromises::store::ImportFailed::Rejected(ImportError::Invalid(errors))) => {
            print_errors(&errors);
            return Err(format!(
                "{} record(s) refer to organizations {} does not have; nothing was imported.",
                errors.total(),
                partner.email
            ));
        }
        Err(err) => return Err(err.to_string()),
    }

    let bar = indicatif::ProgressBar::new(records.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} records ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut total = app::compromises::ImportSummary::default();
    for chunk in records.chunks(FILE_CHUNK) {
        match app::compromises::store::import(&db, &secrets, partner.id, chunk).await {
            Ok(summary) => {
                total.received += summary.received;
                total.imported += summary.imported;
                total.duplicates += summary.duplicates;
                total.deliveries_queued += summary.deliveries_queued;
                bar.inc(chunk.len() as u64);
            }
            Err(app::compromises::store::ImportFailed::Rejected(ImportError::Invalid(errors))) => {
                bar.abandon();
                // An organization removed while the import ran.
                for error in errors.iter().take(ERRORS_SHOWN) {
                    // Record numbers are relative to the chunk: report them in the file's numbering.
                    eprintln!("  {}", renumber(&error.message, error.record, total.received));
                }
                return Err(format!(
                    "stopped: records refer to organizations {} does not have. {} record(s) before them were imported \
                     (running the import again skips them).",
                    partner.email, total.received
                ));
            }
            Err(err) => {
                bar.abandon();
                return Err(format!(
                    "{err}. {} record(s) were imported before this; running the import again skips them.",
                    total.received
                ));
            }
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "Imported {} new compromise(s) from {} for {} ({} already imported, skipped); queued {} ticket delivery(ies). \
         {} records in {:.1} s.",
        total.imported,
        file.display(),
        partner.email,
        total.duplicates,
        total.deliveries_queued,
        total.received,
        seconds
    );
    Ok(())
}

fn print_errors(errors: &[app::compromises::RecordError]) {
    for error in errors.iter().take(ERRORS_SHOWN) {
        eprintln!("  {}", error.message);
    }
    if errors.len() > ERRORS_SHOWN {
        eprintln!("  … and {} more", errors.len() - ERRORS_SHOWN);
    }
}

/// `record 3: …` of a chunk → `record 1003: …` of the file.
fn renumber(message: &str, record: usize, offset: usize) -> String {
    let from = format!("record {record}");
    match message.strip_prefix(&from) {
        Some(rest) => format!("record {}{rest}", record + offset),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renumbers_chunk_records() {
        assert_eq!(
            super::renumber("record 3: `organization_id` 9 is not…", 3, 1000),
            "record 1003: `organization_id` 9 is not…"
        );
        assert_eq!(super::renumber("other", 3, 1000), "other");
    }
}
