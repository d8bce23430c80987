//! Command-line definitions. No I/O here.

use crate::duration::{self, Millis};
use crate::endpoint::Endpoint;
use crate::plan::Hazard;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXIT_CODES: &str = "Exit codes:
  0  success; for diff/plan --exit-code: no differences
  1  error (bad input, connection, pg_dump failure, apply failure; apply refused by preflight:
     a step would fail on TARGET's rows; a plan that failed its rehearsal)
  2  differences found (diff, plan --exit-code), or residual differences after apply
  3  refused: the plan has hazards that were not allowed";

const ENDPOINTS: &str =
    "An endpoint (--source, --target) is a postgres:// URL, a libpq keyword string
(\"host=... dbname=...\"), a file made by pg_dump --schema-only (plain or --format=custom),
SQL files (a directory of .sql files, or a .sql file pg_dump did not write: loaded into a
scratch database, see --scratch), an AWS Secrets Manager secret (arn:aws[-cn|-us-gov]:secretsmanager:... or secret:NAME), or, when
omitted, SOURCE_DATABASE_URL / TARGET_DATABASE_URL, else SOURCE_DB_SECRETS /
TARGET_DB_SECRETS, else SOURCE_SCHEMA_DIR / TARGET_SCHEMA_DIR. libpq variables (PGHOST, PGUSER, PGPASSWORD, PGSSLMODE, ...) apply.";

#[derive(Parser, Debug)]
#[command(
    name = "pgalign",
    version,
    about = "Make a TARGET PostgreSQL schema equal a SOURCE schema, through pg_dump",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The options every subcommand shares.
    pub fn common(&self) -> &Common {
        match &self.command {
            Command::Diff(a) => &a.common,
            Command::Plan(a) => &a.common,
            Command::Apply(a) => &a.common,
            Command::Dump(a) => &a.common,
            Command::Fleet(f) => &f.apply.common,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show every object that differs between SOURCE and TARGET.
    #[command(after_help = format!("{ENDPOINTS}\n\n{EXIT_CODES}"))]
    Diff(DiffArgs),
    /// Write the SQL migration that makes TARGET's schema equal SOURCE's.
    #[command(after_help = format!("{ENDPOINTS}\n\n{EXIT_CODES}"))]
    Plan(PlanArgs),
    /// Plan (or read a reviewed plan) and apply it to TARGET, then verify by dumping again.
    #[command(after_help = format!("{ENDPOINTS}\n\nHazards: {}\n\n{EXIT_CODES}", crate::plan::Hazard::ALL.map(|h| h.name()).join(", ")))]
    Apply(ApplyArgs),
    /// Write SOURCE's schema as SQL files, one per object, that load back as they are.
    ///
    /// DIR/<schema>/<kind>/<name>.sql, in the order load-order.txt lists (schema as code: the
    /// directory is an endpoint for diff, plan and apply).
    #[command(after_help = format!("{ENDPOINTS}\n\n{EXIT_CODES}"))]
    Dump(DumpArgs),
    /// Diff, plan or apply one SOURCE against many TARGETs (a members file), N at a time.
    #[command(after_help = format!("{ENDPOINTS}\n\nMembers file: one member a line, NAME ENDPOINT (any endpoint above; a dump\nfile for diff and plan); # starts a comment.\n\nExit codes:\n  0  every member equal (diff, plan) or applied and verified\n  1  an error on any member\n  3  refused by hazards (or --max-rewrite) on any member\n  2  otherwise, some member differs, has residue, or was not started"))]
    Fleet(FleetArgs),
}

/// What a fleet run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FleetAction {
    /// Each member's drift from SOURCE.
    Diff,
    /// Each member's plan.
    Plan,
    /// Apply to each member.
    Apply,
    /// Write a CodeBuild batch buildspec: --shards builds, each a --shard of the members.
    Codebuild,
    /// Merge the JSON reports of several fleet runs (a batch's shards) into one.
    #[value(name = "merge-reports", alias = "merge")]
    Merge,
}

#[derive(Args, Debug)]
pub struct FleetArgs {
    /// diff (drift check), plan (with --out-dir: a plan file per member) or apply.
    #[arg(value_enum)]
    pub action: FleetAction,
    /// The members: one a line, NAME ENDPOINT.
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// Only this share of the members: the I-th of N (members I, I+N, I+2N, ... in file
    /// order), for one build of a CodeBuild batch.
    #[arg(long, value_name = "I/N", value_parser = crate::fleet::Shard::parse)]
    pub shard: Option<crate::fleet::Shard>,
    /// codebuild: how many builds the batch runs (1-100).
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub shards: u32,
    /// codebuild: write the buildspec here (default: stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// merge: a fleet JSON report to merge (repeatable).
    #[arg(long = "from", value_name = "FILE")]
    pub from: Vec<PathBuf>,
    /// Members processed at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
    /// Run the first N members (in file order) first; when any of them fails or is refused,
    /// start no other.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub canary: u32,
    /// Start no more members once K have failed or been refused.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_failures: Option<u32>,
    /// Write each member's plan (plan: NAME.sql) or apply log (apply: NAME.log) here.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    #[command(flatten)]
    pub apply: ApplyArgs,
}

#[derive(Args, Clone)]
pub struct Common {
    /// The desired schema (e.g. staging).
    #[arg(long, short = 's', value_name = "ENDPOINT")]
    pub source: Option<String>,
    /// The schema to change (e.g. production).
    #[arg(long, short = 't', value_name = "ENDPOINT")]
    pub target: Option<String>,
    /// Compare only this schema (repeatable).
    #[arg(long = "schema", value_name = "NAME")]
    pub schemas: Vec<String>,
    /// Leave this schema out (repeatable).
    #[arg(long = "exclude-schema", value_name = "NAME")]
    pub exclude_schemas: Vec<String>,
    /// Ignore object ownership.
    #[arg(long)]
    pub no_owner: bool,
    /// Ignore privileges (GRANT/REVOKE).
    #[arg(long)]
    pub no_privileges: bool,
    /// Use this pg_dump (pg_restore must sit beside it).
    #[arg(long, value_name = "PATH")]
    pub pg_dump: Option<PathBuf>,
    /// libpq sslmode for both sides.
    #[arg(long, value_enum, value_name = "MODE")]
    pub sslmode: Option<SslMode>,
    /// CA bundle for verify-ca / verify-full (e.g. the RDS global bundle).
    #[arg(long, value_name = "FILE")]
    pub sslrootcert: Option<PathBuf>,
    /// Print how long each stage took, on stderr.
    #[arg(long)]
    pub timings: bool,
    /// Compare SOURCE's schema NAME as TARGET's schema of --target-schema's name (fleets: as
    /// each `schema=TENANT` member's): renamed in a scratch database on TARGET's server.
    #[arg(long, value_name = "NAME")]
    pub source_schema: Option<String>,
    /// The TARGET schema that --source-schema is compared with.
    #[arg(long, value_name = "NAME")]
    pub target_schema: Option<String>,
    /// Progress while it works, on stderr: live lines on a terminal (auto, live), a line as
    /// each stage or check ends (plain: for CI logs), or nothing (none; auto when stderr is not
    /// a terminal).
    #[arg(long, value_enum, default_value = "auto", value_name = "MODE")]
    pub progress: crate::progress::Mode,
    /// How long pg_dump waits for each table's lock (a session holding ACCESS EXCLUSIVE on a
    /// table blocks it); then it fails, naming the table and the blocking process.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = duration::parse_nonzero)]
    pub dump_lock_timeout: Millis,
    /// How long one pg_dump (or pg_restore, or psql loading SQL files) may run in all before
    /// it is stopped.
    #[arg(long, default_value = "30min", value_name = "DURATION", value_parser = duration::parse_nonzero)]
    pub dump_timeout: Millis,
    /// Where SQL-file endpoints are loaded: a server (postgres:// URL, libpq string or secret)
    /// whose user may create databases; pgalign creates a pgalign_scratch_* database there and
    /// drops it after. Default: PGALIGN_SCRATCH_URL.
    /// Without it, pgalign starts a throwaway server of TARGET's major (initdb, pg_ctl and
    /// postgres from PATH, /usr/lib/postgresql/*/bin or --pg-bin) on a Unix socket in a
    /// temporary directory, and removes it after.
    #[arg(long, value_name = "URL", value_parser = parse_scratch_server)]
    pub scratch: Option<Endpoint>,
    /// The throwaway server's major version (default: TARGET's; the newest found when TARGET
    /// does not say).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(9..=99))]
    pub scratch_major: Option<u32>,
    /// The directory of the throwaway server's initdb, pg_ctl and postgres.
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// statement_timeout of each statement while SQL files load (an endless loop in a file
    /// ends there).
    #[arg(long, default_value = "5min", value_name = "DURATION", value_parser = duration::parse_nonzero)]
    pub scratch_timeout: Millis,
}

/// By hand, not derived: `--source` / `--target` may be URLs with passwords.
impl std::fmt::Debug for Common {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |e: &Option<String>| e.as_deref().map(crate::endpoint::redact);
        f.debug_struct("Common")
            .field("source", &redacted(&self.source))
            .field("target", &redacted(&self.target))
            .field("schemas", &self.schemas)
            .field("exclude_schemas", &self.exclude_schemas)
            .field("no_owner", &self.no_owner)
            .field("no_privileges", &self.no_privileges)
            .field("pg_dump", &self.pg_dump)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("timings", &self.timings)
            .field("scratch", &self.scratch)
            .field("scratch_timeout", &self.scratch_timeout)
            .field("scratch_major", &self.scratch_major)
            .field("pg_bin", &self.pg_bin)
            .finish()
    }
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Color: auto (when stdout is a terminal), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, value_enum, default_value_t = PlanFormat::Sql)]
    pub format: PlanFormat,
    /// Write the plan to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with 2 when the plan is not empty.
    #[arg(long)]
    pub exit_code: bool,
    #[command(flatten)]
    pub timeouts: Timeouts,
    /// Use low-lock forms on existing tables: CREATE/DROP INDEX CONCURRENTLY, constraints
    /// added NOT VALID then validated, SET NOT NULL through a validated CHECK.
    #[arg(long)]
    pub online: bool,
    #[command(flatten)]
    pub preflight: Preflight,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    #[command(flatten)]
    pub common: Common,
    /// The directory to write (new or empty).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub common: Common,
    /// Apply this reviewed plan (from `plan --format json -o FILE`) instead of planning now;
    /// refused when TARGET changed since the plan was made.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<std::path::PathBuf>,
    /// Allow these hazards (comma-separated, e.g. data-loss,table-rewrite).
    #[arg(long, value_delimiter = ',', value_name = "LIST", value_parser = parse_hazard)]
    pub allow_hazards: Vec<Hazard>,
    /// Allow every hazard.
    #[arg(long)]
    pub allow_all_hazards: bool,
    /// Refuse (exit 3) a plan with a step that rewrites a table larger than this (500MB, 10GB;
    /// sizes as TARGET reports them now, indexes included), or whose size cannot be read.
    #[arg(long, value_name = "SIZE", value_parser = crate::bytes::parse)]
    pub max_rewrite: Option<crate::bytes::Bytes>,
    /// Change nothing: rehearse the plan (see --rehearse) and run preflight, without locking
    /// any of TARGET's tables.
    #[arg(long)]
    pub dry_run: bool,
    /// Before touching TARGET, run the whole plan on a scratch database holding TARGET's
    /// schema, created on TARGET's server and dropped after, and verify it there; a step that
    /// fails there stops the run (exit 1) with TARGET unchanged.
    #[arg(long)]
    pub rehearse: bool,
    /// Rehearse on this server instead of TARGET's (a postgres:// URL, libpq string or secret
    /// whose user may create databases; implies --rehearse). TARGET's roles must exist there,
    /// unless --no-owner / --no-privileges leave owners and privileges out.
    #[arg(long, value_name = "URL", value_parser = parse_rehearsal_server)]
    pub rehearse_on: Option<Endpoint>,
    #[command(flatten)]
    pub timeouts: Timeouts,
    /// Use low-lock forms on existing tables (see `plan --online`).
    #[arg(long)]
    pub online: bool,
    #[command(flatten)]
    pub preflight: Preflight,
    /// How long to wait for another pgalign run on TARGET to finish (advisory lock).
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration::parse)]
    pub lock_wait: Millis,
    /// How many times a step group is retried after a lock timeout, with backoff (0-20).
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=20))]
    pub lock_retries: u32,
    /// Write a JSON report: steps run, time per step, hazards allowed, verification.
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// Write a Markdown report (for a pull-request comment).
    #[arg(long, value_name = "FILE")]
    pub report_md: Option<std::path::PathBuf>,
}

fn parse_rehearsal_server(s: &str) -> Result<Endpoint, String> {
    match Endpoint::parse(s) {
        Ok(Endpoint::DumpFile(_)) => {
            Err("a rehearsal needs a database server, not a dump file".into())
        }
        Ok(Endpoint::SqlFiles(_)) => {
            Err("a rehearsal needs a database server, not SQL files".into())
        }
        Ok(e) => Ok(e),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// A server to make scratch databases on, from `--scratch` or PGALIGN_SCRATCH_URL.
pub fn parse_scratch_server(s: &str) -> Result<Endpoint, String> {
    match Endpoint::parse(s) {
        Ok(Endpoint::DumpFile(_) | Endpoint::SqlFiles(_)) => Err(
            "a scratch server is a database server (postgres://user@host/db), not a file".into(),
        ),
        Ok(e) => Ok(e),
        Err(e) => Err(format!("{e:#}")),
    }
}

fn parse_hazard(s: &str) -> Result<Hazard, String> {
    Hazard::parse(s.trim()).ok_or_else(|| {
        format!(
            "unknown hazard {:?}; known: {}",
            s.chars().take(40).collect::<String>(),
            Hazard::ALL.map(|h| h.name()).join(", ")
        )
    })
}

/// Read-only checks of TARGET's rows before anything is locked.
#[derive(Args, Debug, Clone)]
pub struct Preflight {
    /// Do not look at TARGET's rows before applying (or, for plan, after planning): no
    /// counts of NULLs, duplicates, orphans, values that do not convert, or rows dropped.
    #[arg(long)]
    pub no_preflight: bool,
    /// statement_timeout of each preflight query (read-only, ACCESS SHARE); a query that
    /// takes longer is reported "not checked: timed out".
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = duration::parse_nonzero)]
    pub preflight_timeout: Millis,
}

#[derive(Args, Debug, Clone)]
pub struct Timeouts {
    /// lock_timeout for each statement (500ms, 10s, 2min; not 0: a lock wait must end).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = duration::parse_nonzero)]
    pub lock_timeout: Millis,
    /// statement_timeout for each statement (15min, 1h); 0 means none.
    #[arg(long, default_value = "0", value_name = "DURATION", value_parser = duration::parse)]
    pub statement_timeout: Millis,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanFormat {
    Sql,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// libpq's sslmode values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}
