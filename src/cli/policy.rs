//! `policy …` and `explain`: the security team's tools. Each loads a policy
//! set and decides offline through [`crate::offline`], with the evaluator the
//! gateway itself uses; none serves or forwards anything.

use std::path::{Path, PathBuf};

use super::{load_config, runtime, Failure, PolicyCommand, Ran, TextOrJson};
use crate::authz::PolicySnapshot;
use crate::config::Config;
use crate::directory::Directory;
use crate::identity::{CallerTable, Identifier};
use crate::offline::cases;
use crate::offline::described::DescribedRequest;
use crate::pipeline::evaluate::Evaluator;
use crate::profile::VendorProfile;

/// `policy …`.
pub(super) fn run(command: PolicyCommand) -> Ran {
    match command {
        PolicyCommand::Validate { policies } => validate(&policies),
        PolicyCommand::Test { policies, config } => test(&policies, config.as_deref()),
        PolicyCommand::Fmt { policies, check } => fmt(&policies, check),
        PolicyCommand::Replay { trail, policies } => replay(&trail, &policies),
    }
}

/// Loads the policy set in `dir`, or prints on stdout why it cannot be used.
fn load_policies(dir: &Path) -> Result<PolicySnapshot, Failure> {
    PolicySnapshot::load(dir).map_err(|errors| {
        println!("{errors}");
        Failure::Reported
    })
}

/// The evaluator `Gateway::new` builds, from the same constructors: the
/// configured callers and JWT settings, and the entity directory if any.
fn evaluator(config: &Config) -> Result<Evaluator, Failure> {
    let identifier =
        Identifier::new(&config.caller, config.jwt.as_ref()).map_err(Failure::usage)?;
    let directory = config
        .policies
        .directory()
        .map(Directory::new)
        .transpose()
        .map_err(Failure::usage)?;
    Ok(Evaluator::new(identifier, directory, None))
}

/// `policy validate`: every error and warning, then a one-line verdict.
fn validate(dir: &Path) -> Ran {
    // Ids the built-in vendors compare normalised must be written so.
    let forms: Vec<_> = crate::profile::builtins()
        .unwrap_or_default()
        .iter()
        .flat_map(VendorProfile::id_forms)
        .collect();
    let loaded = PolicySnapshot::load(dir)
        .and_then(|snapshot| snapshot.check_id_forms(&forms).map(|()| snapshot));
    match loaded {
        Ok(snapshot) => {
            for warning in snapshot.warnings() {
                println!("warning: {warning}");
            }
            println!(
                "OK {} policies in {} ({}), {} warning(s)",
                snapshot.policy_ids().count(),
                dir.display(),
                snapshot.short_version(),
                snapshot.warnings().len()
            );
            Ok(())
        }
        Err(errors) => {
            for error in &errors.0 {
                println!("error: {error}");
            }
            println!("{} error(s)", errors.0.len());
            Err(Failure::Reported)
        }
    }
}

/// `policy test`: runs the cases in `dir/tests/` and lists the failures.
fn test(dir: &Path, config: Option<&Path>) -> Ran {
    let config = load_config(config)?;
    let snapshot = load_policies(dir)?;
    let cases = cases::load_cases(dir).map_err(Failure::usage)?;
    // A case names its caller and entities: nothing is identified from a
    // credential and no directory is asked, whatever the config says.
    let evaluator = Evaluator::new(
        Identifier::new(&CallerTable::default(), None).map_err(Failure::usage)?,
        None,
        None,
    );
    let results = runtime().map_err(Failure::usage)?.block_on(cases::run(
        &cases,
        &snapshot,
        &evaluator,
        |name| config.profile_named(name).ok(),
    ));
    let mut failed = 0;
    for result in &results {
        if let Some(why) = &result.failure {
            failed += 1;
            println!("FAIL {}: {}\n    {why}", result.file.display(), result.name);
        }
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed == 0 {
        Ok(())
    } else {
        Err(Failure::Reported)
    }
}

/// `policy replay`: re-decides the trail with the candidate set; fails when
/// a decision flips.
fn replay(trail: &[PathBuf], dir: &Path) -> Ran {
    let candidate = load_policies(dir)?;
    let report = crate::offline::replay::replay(trail, &candidate).map_err(Failure::usage)?;
    print!("{}", report.render());
    if report.flips.is_empty() {
        Ok(())
    } else {
        Err(Failure::Reported)
    }
}

/// `policy fmt`: rewrites each `*.cedar` file in `dir` (sorted by name) as
/// Cedar's formatter prints it, or with `check` only names those it would.
fn fmt(dir: &Path, check: bool) -> Ran {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Failure::usage(format!("{}: {e}", dir.display())))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .collect();
    files.sort();
    let config = cedar_policy_formatter::Config::default();
    let mut unformatted = 0;
    for file in files {
        let failed = |e: std::io::Error| Failure::usage(format!("{}: {e}", file.display()));
        let text = std::fs::read_to_string(&file).map_err(failed)?;
        let pretty = match cedar_policy_formatter::policies_str_to_pretty(&text, &config) {
            Ok(pretty) => pretty,
            Err(e) => {
                println!("error: {}: {e}", file.display());
                return Err(Failure::Reported);
            }
        };
        if pretty == text {
            continue;
        }
        unformatted += 1;
        if check {
            println!("would reformat {}", file.display());
        } else {
            std::fs::write(&file, pretty).map_err(failed)?;
            println!("formatted {}", file.display());
        }
    }
    if check && unformatted > 0 {
        Err(Failure::Reported)
    } else {
        Ok(())
    }
}

/// `explain`: decides the described request in `request` (`-` for stdin)
/// as the configured gateway would, and prints why.
pub(super) fn explain(config: Option<&Path>, request: &Path, format: TextOrJson) -> Ran {
    let config = load_config(config)?;
    let text = if request == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure::usage(format!("stdin: {e}")))?;
        text
    } else {
        std::fs::read_to_string(request)
            .map_err(|e| Failure::usage(format!("{}: {e}", request.display())))?
    };
    let described = DescribedRequest::parse(&text)
        .map_err(|e| Failure::usage(format!("{}: {e}", request.display())))?;
    let profile = config
        .profile_named(&described.vendor)
        .map_err(Failure::usage)?;
    let snapshot = PolicySnapshot::load(&config.policies.dir).map_err(Failure::usage)?;
    let evaluator = evaluator(&config)?;
    let explanation = runtime()
        .and_then(|rt| {
            // The evaluator moves in, so its directory client is dropped
            // while the runtime still runs.
            rt.block_on(async move {
                described
                    .explain(&profile, &evaluator, &snapshot)
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .map_err(Failure::usage)?;
    match format {
        TextOrJson::Text => print!("{}", explanation.render()),
        TextOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&explanation).unwrap_or_default()
        ),
    }
    Ok(())
}
