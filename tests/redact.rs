//! Issue 13, item 9: no error shows a password. Every endpoint form a user can get wrong (a
//! typo in the scheme, a password with an unencoded / ? # @, a stray word in a keyword string,
//! a JDBC URL, a secret's value where its name belongs) fails with exit code 1 and one line
//! on stderr that says what to do, and holds no part of the password: through --source,
//! --target and the environment variables alike. No database is needed: the other side is a
//! dump file, and a form that parses is pointed at port 1, where nothing listens.

use std::process::{Command, Output};

/// The password in every form; the split forms below cut it into these two halves.
const PW: &str = "S3cretPW42";
const HALVES: [&str; 2] = ["S3cret", "PW42"];

/// A bad endpoint, and words its error must hold (what was wrong or what to do).
fn forms() -> Vec<(String, &'static str)> {
    let h = "127.0.0.1:1";
    vec![
        // A typo in the scheme: not a file path, and not repeated.
        (
            format!("postgress://u:{PW}@{h}/db"),
            "the scheme postgress is not postgres or postgresql",
        ),
        (format!("postgres:/u:{PW}@{h}/db"), "two slashes"),
        (format!("postgresql:/u:{PW}@{h}/db"), "two slashes"),
        (
            format!("postgre://u:{PW}@{h}/db"),
            "the scheme postgre is not postgres or postgresql",
        ),
        (format!("Postgres://u:{PW}@{h}/db"), "lowercase"),
        (format!("u:{PW}@{h}/db"), "without postgres://"),
        (format!("postgres:u:{PW}@{h}/db"), "without postgres://"),
        // No host: the password sits where the port belongs.
        (format!("postgres://u:{PW}/db"), "lacks @host"),
        // Unencoded / ? in the password.
        (format!("postgres://u:S3cret/PW42@{h}/db"), "URL-encoded"),
        (format!("postgres://u:S3cret?PW42@{h}/db"), "URL-encoded"),
        (format!("postgres://u:12/{PW}@{h}/db"), "database name"),
        (format!("postgres://u:12?{PW}@{h}/db"), "query parameter 1"),
        (
            format!("postgres://u:12?S3cret=PW42@{h}/db"),
            "not a libpq keyword",
        ),
        (
            format!("postgres://u:{PW}@{h}/db?password={PW}&x"),
            "query parameter 2",
        ),
        (
            format!("postgres://u:S3cret%zzPW42@{h}/db"),
            "percent-encoding",
        ),
        // Unencoded # @ are taken as part of the password (the userinfo ends at the last @).
        (
            format!("postgres://u:S3cret#PW42@{h}/db"),
            "u@127.0.0.1:1/db",
        ),
        (
            format!("postgres://u:S3cret@PW42@{h}/db"),
            "u@127.0.0.1:1/db",
        ),
        // Keyword strings with a stray word, which may be a password.
        (
            format!("host=127.0.0.1 port=1 password={PW} junk"),
            "word 4 has no \"=\"",
        ),
        (format!("host=127.0.0.1 {PW}"), "word 2 has no \"=\""),
        (
            "host=127.0.0.1 password='S3cret PW42' junk".to_string(),
            "word 3 has no \"=\"",
        ),
        (
            "host=127.0.0.1 password=S3cret PW42=x".to_string(),
            "not a libpq keyword",
        ),
        (format!("host=127.0.0.1 password='{PW}"), "has no closing '"),
        // JDBC: never reaches pg_dump's command line.
        (
            format!("jdbc:postgresql://{h}/db?user=u&password={PW}"),
            "write postgres://user@host:port/db, with the password in PGPASSWORD or URL-encoded",
        ),
        // A secret's value where its name belongs.
        (
            format!(r#"secret:{{"username":"u","password":"{PW}"}}"#),
            "not a secret ARN or name",
        ),
    ]
}

fn pgalign(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgalign"));
    cmd.args(args).env("NO_COLOR", "1");
    for var in [
        "SOURCE_DATABASE_URL",
        "TARGET_DATABASE_URL",
        "SOURCE_DB_SECRETS",
        "TARGET_DB_SECRETS",
        "PGPASSWORD",
        "PGHOST",
        "PGPORT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pgalign")
}

/// What is wrong with this run's output, if anything.
fn problem(o: &Output, needles: &[&str]) -> Option<String> {
    let e = String::from_utf8_lossy(&o.stderr);
    let mut why = Vec::new();
    if o.status.code() != Some(1) {
        why.push(format!("exit code {:?}", o.status.code()));
    }
    if e.trim_end().lines().count() != 1 || !e.starts_with("pgalign: error: ") {
        why.push("not one `pgalign: error:` line".to_string());
    }
    if e.contains(PW) || HALVES.iter().any(|h| e.contains(h)) {
        why.push("PASSWORD LEAKED".to_string());
    }
    if e.contains("panicked") {
        why.push("panic".to_string());
    }
    // Case aside: "source" stands for `--source` and SOURCE_DATABASE_URL alike.
    for n in needles {
        if !e.to_lowercase().contains(&n.to_lowercase()) {
            why.push(format!("no {n:?}"));
        }
    }
    (!why.is_empty()).then(|| format!("{}: {}", why.join(", "), e.trim_end()))
}

/// Runs every form through `run`, and fails listing each form that went wrong.
fn check_all(run: impl Fn(&str) -> Output, context: &str) {
    let failures: Vec<String> = forms()
        .iter()
        .filter_map(|(form, needle)| {
            let o = run(form);
            problem(&o, &[context, needle]).map(|p| format!("  {form}\n    -> {p}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} forms failed:\n{}",
        failures.len(),
        forms().len(),
        failures.join("\n")
    );
}

#[test]
fn bad_source_flag_says_what_to_do_without_the_password() {
    check_all(
        |form| {
            pgalign(
                &[
                    "diff",
                    "--source",
                    form,
                    "--target",
                    "fixtures/dumps/production.dump",
                ],
                &[],
            )
        },
        "source",
    );
}

#[test]
fn bad_target_flag_says_what_to_do_without_the_password() {
    check_all(
        |form| {
            pgalign(
                &[
                    "diff",
                    "--source",
                    "fixtures/dumps/staging.sql",
                    "--target",
                    form,
                ],
                &[],
            )
        },
        "target",
    );
}

#[test]
fn bad_source_database_url_says_what_to_do_without_the_password() {
    check_all(
        |form| {
            pgalign(
                &["diff", "--target", "fixtures/dumps/production.dump"],
                &[("SOURCE_DATABASE_URL", form)],
            )
        },
        "source",
    );
}

#[test]
fn bad_target_database_url_on_apply_says_what_to_do_without_the_password() {
    check_all(
        |form| {
            pgalign(
                &[
                    "apply",
                    "--source",
                    "fixtures/dumps/staging.sql",
                    "--dry-run",
                ],
                &[("TARGET_DATABASE_URL", form)],
            )
        },
        "target",
    );
}

#[test]
fn a_secrets_value_in_source_db_secrets_is_not_repeated() {
    let value = format!(r#"{{"username":"u","password":"{PW}","host":"h"}}"#);
    let o = pgalign(
        &["diff", "--target", "fixtures/dumps/production.dump"],
        &[("SOURCE_DB_SECRETS", &value), ("AWS_REGION", "us-east-1")],
    );
    if let Some(p) = problem(&o, &["SOURCE_DB_SECRETS", "not a secret ARN or name"]) {
        panic!("{p}");
    }
}

#[test]
fn debug_output_of_the_command_line_holds_no_password() {
    use clap::Parser;
    let url = format!("postgres://u:{PW}@h/db");
    let cli = pgalign::cli::Cli::parse_from([
        "pgalign",
        "diff",
        "--source",
        &url,
        "--target",
        &format!("host=h password={PW}"),
    ]);
    let shown = format!("{cli:?}");
    assert!(!shown.contains(PW), "{shown}");
    assert!(shown.contains("postgres://u:***@h/db"), "{shown}");
}
