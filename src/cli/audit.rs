//! `audit …`: the audit reviewer's tools, thin wrappers over the readers in
//! [`crate::trail`]. They read a trail; none writes to one.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use super::{AuditCommand, DecisionArg, ExportArg, Failure, FormatArg, Ran, TextOrJson};
use crate::trail::checkpoint::{self, Checkpoint, SigningKey};
use crate::trail::filter::{self, DecisionValue, QueryFilter};
use crate::trail::pseudonym::PseudonymKey;
use crate::trail::receipt as receipts;
use crate::trail::verify::{verify_files, VerifyOptions, VerifySummary};
use crate::trail::{export, query, render};

/// `audit …`.
pub(super) fn run(command: AuditCommand) -> Ran {
    let paths = match &command {
        AuditCommand::Verify { files, .. }
        | AuditCommand::Query { files, .. }
        | AuditCommand::Checkpoint { files, .. }
        | AuditCommand::Receipt { files, .. }
        | AuditCommand::Export { files, .. } => files.as_slice(),
        AuditCommand::Tail { file, .. } => std::slice::from_ref(file),
        // `audit serve` checks its own: the config may name the trail.
        AuditCommand::Serve { .. } | AuditCommand::Keygen { .. } => &[],
    };
    all_exist(paths)?;
    match command {
        serve @ AuditCommand::Serve { .. } => super::console::serve(serve),
        AuditCommand::Verify {
            files,
            checkpoint,
            public_key,
            partial,
            receipt,
            pseudonym_key,
        } => verify(
            &files,
            checkpoint.as_deref(),
            public_key.as_deref(),
            partial,
            (receipt.as_deref(), pseudonym_key.as_deref()),
        ),
        AuditCommand::Query {
            files,
            since,
            until,
            decision,
            vendor,
            caller,
            target,
            policy,
            pseudonym_key,
            pending,
            format,
        } => {
            let filter = QueryFilter {
                pending,
                since: optional(since.as_deref(), filter::parse_time)?,
                until: optional(until.as_deref(), filter::parse_time)?,
                decision: decision.map(|d| match d {
                    DecisionArg::Allow => DecisionValue::Allow,
                    DecisionArg::Deny => DecisionValue::Deny,
                    DecisionArg::Held => DecisionValue::Held,
                }),
                vendor,
                caller,
                target,
                policy,
            };
            query(&files, &filter, pseudonym_key.as_deref(), format)
        }
        AuditCommand::Tail {
            file,
            lines,
            follow,
        } => tail(&file, lines, follow),
        AuditCommand::Checkpoint { files, key } => sign(&files, &key),
        AuditCommand::Receipt {
            files,
            target,
            pseudonym_key,
            format,
        } => receipt(&files, &target, pseudonym_key.as_deref(), format),
        AuditCommand::Export {
            files,
            format,
            follow,
        } => export(&files, format, follow),
        AuditCommand::Keygen { out } => keygen(&out),
    }
}

/// A usage error for the first path that does not exist: a mistyped path is
/// not a tampered trail, so verify must not answer exit 1.
pub(super) fn all_exist(paths: &[PathBuf]) -> Ran {
    match paths.iter().find(|p| !p.try_exists().unwrap_or(true)) {
        Some(absent) => Err(Failure::usage(format!(
            "{}: no such file or directory",
            absent.display()
        ))),
        None => Ok(()),
    }
}

/// `read` of a value given on the command line (a file's path, a time),
/// when one is given; a value it refuses is a usage error.
fn optional<A: ?Sized, T, E: Display>(
    value: Option<&A>,
    read: impl FnOnce(&A) -> Result<T, E>,
) -> Result<Option<T>, Failure> {
    value.map(read).transpose().map_err(Failure::usage)
}

/// Verifies the trail, or prints on stdout the first record that breaks it.
fn verified(files: &[PathBuf], options: &VerifyOptions) -> Result<VerifySummary, Failure> {
    verify_files(files, options).map_err(|broken| {
        println!("{broken}");
        Failure::Reported
    })
}

/// `audit verify`.
fn verify(
    files: &[PathBuf],
    checkpoint: Option<&Path>,
    public_key: Option<&Path>,
    partial: bool,
    (receipt, pseudonym_key): (Option<&Path>, Option<&Path>),
) -> Ran {
    let options = VerifyOptions {
        partial,
        checkpoint: optional(checkpoint, Checkpoint::load)?,
        public_key: optional(public_key, checkpoint::read_public_key)?,
    };
    let receipt = optional(receipt, read_receipt)?;
    let pseudonym_key = optional(pseudonym_key, PseudonymKey::load)?;
    println!("{}", verified(files, &options)?);
    let Some(receipt) = receipt else {
        return Ok(());
    };
    match receipts::verify_receipt(
        &receipt,
        files,
        options.public_key.as_deref(),
        pseudonym_key.as_ref(),
    )
    .map_err(Failure::usage)?
    {
        Ok(check) => {
            println!(
                "receipt for {}: {} record(s) in the trail, unmodified{}",
                receipt.target,
                check.records,
                if check.signature_checked {
                    "; checkpoint signature verified with the pinned key"
                } else if receipt.checkpoint.is_some() {
                    "; checkpoint signature not checked: pass --public-key"
                } else {
                    "; no checkpoint in the receipt"
                }
            );
            Ok(())
        }
        Err(broken) => {
            println!("receipt for {}: {broken}", receipt.target);
            Err(Failure::Reported)
        }
    }
}

/// A receipt, read strictly: a repeated key anywhere is refused, as the
/// trail's verification refuses one.
fn read_receipt(path: &Path) -> Result<receipts::Receipt, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::json::from_slice(&bytes)
        .map_err(|e| match e {
            crate::json::StrictJsonError::DuplicateKey(key) => {
                format!("the key `{key}` is repeated")
            }
            crate::json::StrictJsonError::Syntax(syntax) => syntax,
        })
        .and_then(|value| serde_json::from_value(value).map_err(|e| e.to_string()))
        .map_err(|e| format!("{}: not a receipt: {e}", path.display()))
}

/// `audit receipt`: the target's records on stdout; exit 1 when the trail
/// holds nothing about it.
fn receipt(
    files: &[PathBuf],
    target: &str,
    pseudonym_key: Option<&Path>,
    format: TextOrJson,
) -> Ran {
    let key = optional(pseudonym_key, PseudonymKey::load)?;
    let receipt = receipts::receipt(files, target, key.as_ref()).map_err(Failure::usage)?;
    match format {
        TextOrJson::Text => print!("{}", receipts::render_table(&receipt)),
        TextOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&receipt).unwrap_or_default()
        ),
    }
    if receipt.records.is_empty() {
        eprintln!("no record on the trail names {target}");
        return Err(Failure::Reported);
    }
    Ok(())
}

/// `audit export`: every record as an event, then (following) new ones
/// until Ctrl-C.
fn export(files: &[PathBuf], format: ExportArg, follow: bool) -> Ran {
    let format = match format {
        ExportArg::Ocsf => export::Format::Ocsf,
        ExportArg::Ecs => export::Format::Ecs,
        ExportArg::Jsonl => export::Format::Jsonl,
    };
    let mut out = std::io::stdout().lock();
    let written = export::export_files(files, format, &mut out).map_err(Failure::usage)?;
    if !follow {
        eprintln!("{} records exported", written.events);
        return Ok(());
    }
    let newest = crate::trail::files::trail_files(files)
        .map_err(Failure::usage)?
        .pop()
        .ok_or_else(|| Failure::usage("no trail file to follow"))?;
    let stop = stop_on_ctrl_c();
    // The newest file again from its start, less what was exported: a
    // record appended meanwhile is not missed.
    let exporter = export::Exporter::new(format, out, written.last_seq);
    crate::trail::tail::tail(&newest, usize::MAX, true, exporter, || {
        stop.load(Ordering::Acquire)
    })
    .map_err(Failure::usage)
}

/// A flag that Ctrl-C sets.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            let _ = rt.block_on(tokio::signal::ctrl_c());
        }
        flag.store(true, Ordering::Release);
    });
    stop
}

/// `audit query`: the matching decisions on stdout; warnings, and in the
/// table format the count, on stderr.
fn query(
    files: &[PathBuf],
    filter: &QueryFilter,
    pseudonym_key: Option<&Path>,
    format: FormatArg,
) -> Ran {
    let key = optional(pseudonym_key, PseudonymKey::load)?;
    let output = query::query_files(files, filter, key.as_ref()).map_err(Failure::usage)?;
    for warning in &output.warnings {
        eprintln!("warning: {warning}");
    }
    let text = match format {
        FormatArg::Table => render::render_table(&output.rows),
        FormatArg::Json => render::render_json(&output.rows),
        FormatArg::Csv => render::render_csv(&output.rows),
    };
    print!("{text}");
    if matches!(format, FormatArg::Table) {
        eprintln!("{} decisions", output.rows.len());
    }
    Ok(())
}

/// `audit tail`: the last `lines` records, then new ones until Ctrl-C when
/// following.
fn tail(file: &Path, lines: usize, follow: bool) -> Ran {
    let stop = if follow {
        stop_on_ctrl_c()
    } else {
        Arc::new(AtomicBool::new(false))
    };
    let out = std::io::stdout().lock();
    crate::trail::tail::tail(file, lines, follow, out, || stop.load(Ordering::Acquire))
        .map_err(Failure::usage)
}

/// `audit checkpoint`: the verified head, signed, on stdout.
fn sign(files: &[PathBuf], key: &Path) -> Ran {
    let key = SigningKey::load(key).map_err(Failure::usage)?;
    // Sign only a head that verifies: a signature vouches for every record.
    let summary = verified(files, &VerifyOptions::default())?;
    let head = summary
        .head
        .ok_or_else(|| Failure::usage("the trail is empty: nothing to sign"))?;
    println!(
        "{}",
        checkpoint::sign(&head, SystemTime::now(), &key).to_json()
    );
    eprintln!("signed seq {} with key {}", head.seq, key.key_id());
    Ok(())
}

/// `audit keygen`: a new private key at `out` and its public key beside it.
fn keygen(out: &Path) -> Ran {
    let pem = checkpoint::generate_pem().map_err(Failure::usage)?;
    if out.exists() {
        return Err(Failure::usage(format!(
            "{}: exists; not overwriting a key",
            out.display()
        )));
    }
    write_private(out, &pem)
        .and_then(|()| {
            let key = SigningKey::load(out).map_err(std::io::Error::other)?;
            let public = out.with_extension("pub");
            std::fs::write(&public, key.public_key_pem())?;
            println!(
                "wrote {} (private, 0600) and {}",
                out.display(),
                public.display()
            );
            println!("key id {}", key.key_id());
            Ok(())
        })
        .map_err(|e| Failure::usage(format!("{}: {e}", out.display())))
}

/// Writes a new file readable by its owner only; never replaces one.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}
