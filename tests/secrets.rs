//! AWS Secrets Manager end to end, with the real AWS SDK pointed at moto's server on 127.0.0.1
//! (`AWS_ENDPOINT_URL`, dummy keys, `AWS_EC2_METADATA_DISABLED=true`): secrets created through the
//! API, pgalign fetching them and dumping the local PostgreSQL through them; every error's message;
//! no password on any child's command line, in verbose output or in an error; TLS flags reaching
//! pg_dump.
//!
//! These tests start moto themselves (`python3 -m moto.server`, or `$PGALIGN_PYTHON`), or use the
//! one at `$PGALIGN_MOTO_URL`. When moto cannot be started they FAIL, so CI really runs them;
//! `PGALIGN_SKIP_AWS=1` turns that into a skip with a message.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const REGION: &str = "us-east-1";

// ---------------------------------------------------------------------------------------------
// moto

fn python() -> String {
    std::env::var("PGALIGN_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

fn skip_aws() -> bool {
    std::env::var("PGALIGN_SKIP_AWS").is_ok_and(|v| v == "1" || v == "true")
}

/// A moto server: killed on drop, and, since a `static` is never dropped, also when this test
/// process ends: the launcher exits when its stdin (a pipe held by us) reaches end of file.
struct Moto {
    url: String,
    child: Option<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const LAUNCHER: &str = r#"
import os, sys, threading
def watch():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
from moto.server import main
main(["-H", "127.0.0.1", "-p", sys.argv[1]])
"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a local port")
}

fn reachable(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// Starts moto on a free port of 127.0.0.1 and waits (up to 20 s) until it accepts connections.
fn spawn_moto(extra_env: &[(&str, &str)]) -> Result<Moto, String> {
    let wait = Duration::from_secs(
        std::env::var("PGALIGN_MOTO_WAIT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    );
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        // moto logs every request: to a file, so a full pipe can never stall it.
        let log = std::env::temp_dir().join(format!(
            "pgalign-test-moto-{}-{port}.log",
            std::process::id()
        ));
        let logf = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(python());
        cmd.args(["-c", LAUNCHER, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(logf);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", python()))?;
        let t0 = Instant::now();
        while t0.elapsed() < wait {
            if reachable(port) {
                let _ = std::fs::remove_file(&log);
                return Ok(Moto {
                    url: format!("http://127.0.0.1:{port}"),
                    child: Some(child),
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                last = format!(
                    "moto exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default().trim()
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if last.is_empty() {
            last = format!("moto did not listen on port {port} within {wait:?}");
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&log);
    }
    Err(last)
}

static SHARED: OnceLock<Result<Moto, String>> = OnceLock::new();

/// The moto server shared by the tests, or None (after saying why) when PGALIGN_SKIP_AWS=1.
fn moto() -> Option<&'static Moto> {
    let r = SHARED.get_or_init(|| match std::env::var("PGALIGN_MOTO_URL") {
        Ok(url) if !url.is_empty() => {
            let port = url.rsplit(':').next().and_then(|p| p.parse().ok());
            match port {
                Some(p) if reachable(p) => Ok(Moto { url, child: None }),
                _ => Err(format!("PGALIGN_MOTO_URL={url} is not reachable")),
            }
        }
        _ => spawn_moto(&[]),
    });
    match r {
        Ok(m) => Some(m),
        Err(e) => {
            if skip_aws() {
                eprintln!(
                    "SKIP (PGALIGN_SKIP_AWS=1): moto's Secrets Manager is not available: {e}"
                );
                None
            } else {
                panic!(
                    "moto's Secrets Manager is needed for these tests and could not be started: {e}\n\
                     install it with `python3 -m pip install 'moto[server]'` (or set PGALIGN_PYTHON \
                     to a python that has it, or PGALIGN_MOTO_URL to a running server); \
                     PGALIGN_SKIP_AWS=1 skips these tests"
                )
            }
        }
    }
}

macro_rules! moto_or_skip {
    () => {
        match moto() {
            Some(m) => m,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// secrets, through the same SDK pgalign uses

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn sm_client(url: &str, region: &str) -> aws_sdk_secretsmanager::Client {
    use aws_sdk_secretsmanager::config::{Credentials, Region};
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version_latest()
        .endpoint_url(url)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

static N: AtomicUsize = AtomicUsize::new(0);

fn unique(label: &str) -> String {
    format!(
        "{label}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Creates a secret (string value) and returns its ARN.
fn put_secret(m: &Moto, region: &str, name: &str, value: &str) -> String {
    let c = sm_client(&m.url, region);
    runtime().block_on(async {
        c.create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("create secret in moto")
            .arn()
            .expect("an ARN")
            .to_string()
    })
}

fn put_binary_secret(m: &Moto, name: &str, value: &[u8]) -> String {
    let c = sm_client(&m.url, REGION);
    runtime().block_on(async {
        c.create_secret()
            .name(name)
            .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(value))
            .send()
            .await
            .expect("create secret in moto")
            .arn()
            .expect("an ARN")
            .to_string()
    })
}

/// A password nobody could confuse with anything else in pgalign's output.
fn password() -> String {
    unique("pw-Zq7vX9")
}

/// RDS's secret shape for a database on the local server.
fn rds_json(db: &str, pw: &str) -> String {
    serde_json::json!({
        "username": user(),
        "password": pw,
        "engine": "postgres",
        "host": host(),
        "port": port().parse::<u16>().unwrap(),
        "dbname": db,
        "dbInstanceIdentifier": "pgalign-local",
    })
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// running pgalign

/// pgalign with an environment that reaches moto and nothing else of AWS: dummy keys, no
/// profile or config files, no instance metadata, and none of the caller's PG* variables.
fn pgalign_aws(endpoint: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgalign"));
    for v in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "SOURCE_DATABASE_URL",
        "TARGET_DATABASE_URL",
        "SOURCE_DB_SECRETS",
        "TARGET_DB_SECRETS",
    ] {
        c.env_remove(v);
    }
    c.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/pgalign-tests/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/pgalign-tests/aws-credentials",
        )
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("run pgalign")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Exit code 1, one line on stderr starting `pgalign: error:`, naming the secret, with every
/// needle in it, and without the secret's value.
fn assert_error(o: &Output, secret: &str, needles: &[&str], value: &str) {
    let e = err(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "not one line: {e}");
    assert!(e.starts_with("pgalign: error: "), "{e}");
    assert!(
        e.contains(secret),
        "the secret {secret:?} is not named: {e}"
    );
    for n in needles {
        assert!(e.contains(n), "expected {n:?} in: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
    assert_no_leak(o, value);
}

fn assert_no_leak(o: &Output, value: &str) {
    assert!(!value.is_empty());
    assert!(
        !out(o).contains(value) && !err(o).contains(value),
        "the secret's value leaked into pgalign's output:\nstdout: {}\nstderr: {}",
        out(o),
        err(o)
    );
}

fn apply_available() -> bool {
    Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .args(["apply", "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn two_dbs(old: &str, new: &str) -> (TempDb, TempDb) {
    let t = TempDb::new("sm_t");
    let s = TempDb::new("sm_s");
    t.exec(old).unwrap();
    s.exec(new).unwrap();
    (t, s)
}

// ---------------------------------------------------------------------------------------------
// the happy paths

#[test]
fn plan_and_diff_through_secrets_by_arn_by_name_and_from_the_environment() {
    let m = moto_or_skip!();
    let (t, s) = two_dbs(
        "CREATE TABLE a (id int);",
        "CREATE TABLE a (id int, b int); CREATE TABLE items (id int);",
    );
    let (spw, tpw) = (password(), password());
    let src_arn = put_secret(m, REGION, &unique("src"), &rds_json(&s.name, &spw));
    let tgt_name = unique("tgt");
    put_secret(m, REGION, &tgt_name, &rds_json(&t.name, &tpw));
    let tgt = format!("secret:{tgt_name}");

    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", &src_arn, "--target", &tgt]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let plan = out(&o);
    assert!(
        plan.contains("ALTER TABLE public.a ADD COLUMN b integer;"),
        "{plan}"
    );
    assert!(plan.contains("CREATE TABLE public.items"), "{plan}");
    assert_no_leak(&o, &spw);
    assert_no_leak(&o, &tpw);

    let mut c = pgalign_aws(&m.url);
    c.args(["diff", "--source", &src_arn, "--target", &tgt]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(out(&o).contains("+ table public.items"), "{}", out(&o));

    // CodeBuild's way: no flags, the ARNs in SOURCE_DB_SECRETS / TARGET_DB_SECRETS.
    let mut c = pgalign_aws(&m.url);
    c.arg("plan")
        .env("SOURCE_DB_SECRETS", &src_arn)
        .env("TARGET_DB_SECRETS", &tgt_name);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(
        out(&o),
        plan,
        "the same plan whichever way the secrets came"
    );
}

#[test]
fn apply_through_secrets_then_nothing_left_to_do() {
    let m = moto_or_skip!();
    if !apply_available() {
        eprintln!("SKIP: `pgalign apply` does not exist yet (pgalign apply --help failed); only planning is tested through secrets");
        return;
    }
    let (t, s) = two_dbs(
        "CREATE TABLE a (id int);",
        "CREATE TABLE a (id int, b int); CREATE TABLE items (id int); COMMENT ON TABLE items IS 'new';",
    );
    let (spw, tpw) = (password(), password());
    let src = put_secret(m, REGION, &unique("src"), &rds_json(&s.name, &spw));
    let tgt = put_secret(m, REGION, &unique("tgt"), &rds_json(&t.name, &tpw));
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let report_md = dir.path().join("report.md");

    let mut c = pgalign_aws(&m.url);
    c.args(["apply", "--source", &src, "--target", &tgt, "--report"])
        .arg(&report)
        .arg("--report-md")
        .arg(&report_md);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert_no_leak(&o, &tpw);
    for f in [&report, &report_md] {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!text.contains(&spw) && !text.contains(&tpw), "{text}");
    }
    serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&report).unwrap())
        .expect("report.json is JSON");
    assert_eq!(
        t.exec("SELECT count(*) FROM pg_class WHERE relname = 'items'")
            .unwrap()
            .trim(),
        "1"
    );

    let mut c = pgalign_aws(&m.url);
    c.args(["diff", "--source", &src, "--target", &tgt]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
}

#[test]
fn region_comes_from_the_arn_else_from_the_aws_configuration() {
    let m = moto_or_skip!();
    let db = TempDb::new("sm_region");
    db.exec("CREATE TABLE only_here (id int);").unwrap();
    let pw = password();
    let name = unique("eu");
    // moto keeps one store per region, as AWS does.
    let arn = put_secret(m, "eu-west-1", &name, &rds_json(&db.name, &pw));
    assert!(
        arn.starts_with("arn:aws:secretsmanager:eu-west-1:"),
        "{arn}"
    );

    // AWS_REGION says us-east-1; the ARN wins.
    let mut c = pgalign_aws(&m.url);
    c.args(["diff", "--source", &arn, "--target", &arn]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));

    // A bare name is looked up in the configured region: not there.
    let by_name = format!("secret:{name}");
    let mut c = pgalign_aws(&m.url);
    c.args(["diff", "--source", &by_name, "--target", &by_name]);
    assert_error(&run(c), &name, &["not found", "region"], &pw);

    // ... and found once the configuration names the right region.
    let mut c = pgalign_aws(&m.url);
    c.args(["diff", "--source", &by_name, "--target", &by_name])
        .env("AWS_REGION", "eu-west-1");
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));

    // No region anywhere: said plainly, before any call.
    let mut c = pgalign_aws(&m.url);
    c.args(["diff", "--source", &by_name, "--target", &by_name])
        .env_remove("AWS_REGION");
    assert_error(&run(c), &name, &["no AWS region", "AWS_REGION"], &pw);
}

#[test]
fn rds_managed_secret_takes_host_port_and_database_from_pg_variables() {
    let m = moto_or_skip!();
    let db = TempDb::new("sm_managed");
    db.exec("CREATE TABLE t (id int);").unwrap();
    let pw = password();
    // What RDS stores when it manages the master password itself.
    let name = unique("managed");
    let value = serde_json::json!({"username": user(), "password": pw}).to_string();
    let arn = put_secret(m, REGION, &name, &value);

    let mut c = pgalign_aws(&m.url);
    c.args(["diff", "--source", &arn, "--target", &arn])
        .env("PGHOST", host())
        .env("PGPORT", port())
        .env("PGDATABASE", &db.name);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_no_leak(&o, &pw);

    let mut c = pgalign_aws(&m.url);
    c.args(["diff", "--source", &arn, "--target", &arn]);
    assert_error(&run(c), &name, &["has no host", "PGHOST"], &pw);
}

// ---------------------------------------------------------------------------------------------
// every error, by its message

#[test]
fn error_secret_not_found() {
    let m = moto_or_skip!();
    let arn = format!(
        "arn:aws:secretsmanager:{REGION}:123456789012:secret:{}",
        unique("missing")
    );
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", &arn, "--target", &arn]);
    assert_error(&run(c), &arn, &["not found"], "no value");
}

#[test]
fn error_secret_is_not_json() {
    let m = moto_or_skip!();
    let name = unique("notjson");
    let value = password(); // a bare password, as people sometimes store
    put_secret(m, REGION, &name, &value);
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", &format!("secret:{name}")])
        .env("TARGET_DB_SECRETS", &name);
    assert_error(&run(c), &name, &["is not JSON", "username"], &value);
}

#[test]
fn error_secret_lacks_keys() {
    let m = moto_or_skip!();
    let name = unique("nopw");
    let value = serde_json::json!({"username": "app", "host": "h", "note": password()}).to_string();
    put_secret(m, REGION, &name, &value);
    let s = format!("secret:{name}");
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", &s, "--target", &s]);
    assert_error(&run(c), &name, &["lacks password"], &value);

    let name = unique("nouser");
    let pw = password();
    put_secret(
        m,
        REGION,
        &name,
        &serde_json::json!({"password": pw}).to_string(),
    );
    let s = format!("secret:{name}");
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", &s, "--target", &s]);
    assert_error(&run(c), &name, &["lacks username"], &pw);

    let name = unique("array");
    put_secret(m, REGION, &name, "[1, 2]");
    let s = format!("secret:{name}");
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", &s, "--target", &s]);
    assert_error(&run(c), &name, &["not an object"], "[1, 2]");
}

#[test]
fn error_secret_is_for_another_engine() {
    let m = moto_or_skip!();
    let name = unique("mysql");
    let pw = password();
    let value = serde_json::json!({"username": "admin", "password": pw, "engine": "mysql", "host": "db", "port": 3306}).to_string();
    let arn = put_secret(m, REGION, &name, &value);
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", &arn, "--target", &arn]);
    assert_error(&run(c), &arn, &["\"mysql\"", "not PostgreSQL"], &pw);
}

#[test]
fn error_secret_is_binary() {
    let m = moto_or_skip!();
    let name = unique("binary");
    let pw = password();
    let arn = put_binary_secret(m, &name, rds_json("x", &pw).as_bytes());
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", &arn, "--target", &arn]);
    assert_error(&run(c), &arn, &["no string value"], &pw);
}

#[test]
fn error_secrets_manager_unreachable() {
    // AWS_ENDPOINT_URL at a port nothing listens on (needs no moto).
    let closed = free_port();
    let s = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
    let mut c = pgalign_aws(&format!("http://127.0.0.1:{closed}"));
    c.args(["plan", "--source", s, "--target", s]);
    let t0 = Instant::now();
    let o = run(c);
    assert_error(
        &o,
        s,
        &["cannot reach AWS Secrets Manager", "AWS_ENDPOINT_URL"],
        "no value",
    );
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn error_no_aws_credentials() {
    let m = moto_or_skip!();
    let s = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", s, "--target", s])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    assert_error(
        &run(c),
        s,
        &["no AWS credentials found", "service role", "AWS_PROFILE"],
        "no value",
    );

    // A profile that is named but exists nowhere.
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", s, "--target", s])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_PROFILE", "pgalign-no-such-profile");
    assert_error(
        &run(c),
        s,
        &[
            "no AWS credentials found",
            "AWS_PROFILE=pgalign-no-such-profile",
        ],
        "no value",
    );
}

/// moto enforces IAM once INITIAL_NO_AUTH_ACTION_COUNT requests have been served: the first
/// ones set up a secret, a user allowed only ListSecrets, and that user's access key.
#[test]
fn error_access_denied_and_rejected_credentials_under_moto_iam() {
    if moto().is_none() {
        return;
    }
    let setup = r#"
import boto3, json, sys
url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
sm = boto3.client("secretsmanager", **kw)
iam = boto3.client("iam", **kw)
arn = sm.create_secret(Name="prod/app-db", SecretString=sys.argv[2])["ARN"]
iam.create_user(UserName="reader")
key = iam.create_access_key(UserName="reader")["AccessKey"]
iam.put_user_policy(UserName="reader", PolicyName="list-only", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"}]}))
print(json.dumps({"arn": arn, "id": key["AccessKeyId"], "key": key["SecretAccessKey"]}))
"#;
    let iam_moto = match spawn_moto(&[("INITIAL_NO_AUTH_ACTION_COUNT", "4")]) {
        Ok(m) => m,
        Err(e) => panic!("cannot start a second moto: {e}"),
    };
    let pw = password();
    let value = rds_json("app", &pw);
    let o = Command::new(python())
        .args(["-c", setup, &iam_moto.url, &value])
        .output()
        .expect("run python");
    assert!(o.status.success(), "moto IAM set-up: {}", err(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arn = v["arn"].as_str().unwrap().to_string();
    let (id, key) = (v["id"].as_str().unwrap(), v["key"].as_str().unwrap());

    // A known identity without secretsmanager:GetSecretValue.
    let mut c = pgalign_aws(&iam_moto.url);
    c.args(["plan", "--source", &arn, "--target", &arn])
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", key);
    assert_error(
        &run(c),
        &arn,
        &["access denied", "secretsmanager:GetSecretValue"],
        &pw,
    );

    // An access key AWS does not know.
    let mut c = pgalign_aws(&iam_moto.url);
    c.args(["plan", "--source", &arn, "--target", &arn]);
    assert_error(
        &run(c),
        &arn,
        &["rejected the credentials", "InvalidClientTokenId"],
        &pw,
    );

    // A known key with the wrong secret key.
    let mut c = pgalign_aws(&iam_moto.url);
    c.args(["plan", "--source", &arn, "--target", &arn])
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", "not-the-key");
    assert_error(
        &run(c),
        &arn,
        &["rejected the credentials", "SignatureDoesNotMatch"],
        &pw,
    );
}

/// A local endpoint that answers every request with one canned response, byte for byte what
/// Secrets Manager sends for errors moto does not produce (it never expires a session token and
/// does not model KMS key policies).
fn canned_endpoint(status: u16, body: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as many body bytes as Content-Length says.
            let complete = |req: &[u8]| -> bool {
                let text = String::from_utf8_lossy(req);
                let Some(end) = text.find("\r\n\r\n") else {
                    return false;
                };
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                req.len() >= end + 4 + len
            };
            while !complete(&req) {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let resp = format!(
                "HTTP/1.1 {status} Bad Request\r\nx-amzn-RequestId: 0d8d2b3c-canned\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    url
}

#[test]
fn error_expired_token_access_denied_and_kms_as_aws_words_them() {
    let s = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:prod/app-db-AbCdEf";
    for (body, needles) in [
        (
            r#"{"__type":"com.amazon.coral.service#ExpiredTokenException","message":"The security token included in the request is expired"}"#,
            &["rejected the credentials", "expired", "refresh them"][..],
        ),
        (
            r#"{"__type":"AccessDeniedException","Message":"User: arn:aws:sts::123456789012:assumed-role/codebuild-pgalign/AWSCodeBuild-1 is not authorized to perform: secretsmanager:GetSecretValue on resource: prod/app-db because no identity-based policy allows the secretsmanager:GetSecretValue action"}"#,
            &[
                "access denied",
                "secretsmanager:GetSecretValue",
                "kms:Decrypt",
            ][..],
        ),
        (
            r#"{"__type":"DecryptionFailure","Message":"Access to KMS is not allowed"}"#,
            &["cannot decrypt", "kms:Decrypt"][..],
        ),
        (
            r#"{"__type":"InvalidRequestException","Message":"You can't perform this operation on the secret because it was marked for deletion."}"#,
            &["InvalidRequestException", "marked for deletion"][..],
        ),
    ] {
        let url = canned_endpoint(400, body);
        let mut c = pgalign_aws(&url);
        c.args(["plan", "--source", s, "--target", s]);
        assert_error(&run(c), s, needles, "no value");
    }
}

// ---------------------------------------------------------------------------------------------
// passwords stay out of command lines, logs and errors

/// A directory with a `pg_dump` that records how it was called (argv, the names of its
/// environment variables, and the PGPASSWORD it received) and then becomes the real pg_dump,
/// and a `pg_restore` beside it (pgalign looks for it there). It refuses, without connecting,
/// any host under rds.amazonaws.com: those tests only look at the arguments.
struct Wrapper {
    dir: tempfile::TempDir,
}

fn real_bindir() -> PathBuf {
    if let Ok(d) = std::env::var("PGALIGN_TEST_BINDIR") {
        if !d.is_empty() {
            return PathBuf::from(d);
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("pg_dump").is_file());
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(d) = dirs.pop() {
        return d;
    }
    let o = Command::new("sh")
        .args(["-c", "command -v pg_dump"])
        .output()
        .unwrap();
    let p = std::fs::canonicalize(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    p.parent().unwrap().to_path_buf()
}

impl Wrapper {
    fn new() -> Wrapper {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = real_bindir();
        let d = dir.path().display();
        let script = format!(
            r#"#!/bin/sh
if [ "$1" != "--version" ]; then
  {{ printf 'argv:'; for a in "$@"; do printf ' [%s]' "$a"; done; printf '\n'
     printf 'env: %s\n' "$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | sort | tr '\n' ' ')"; }} >> '{d}/calls'
  printf '%s' "$PGPASSWORD" > '{d}/pgpassword'
  case "$*" in *rds.amazonaws.com*) echo "test wrapper: not connecting to $*" >&2; exit 1;; esac
  sleep 0.3
fi
exec '{}' "$@"
"#,
            real.join("pg_dump").display()
        );
        let p = dir.path().join("pg_dump");
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(real.join("pg_restore"), dir.path().join("pg_restore")).unwrap();
        Wrapper { dir }
    }
    fn pg_dump(&self) -> PathBuf {
        self.dir.path().join("pg_dump")
    }
    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default()
    }
    fn password(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgpassword")).unwrap_or_default()
    }
}

/// Every process below `root`, by reading /proc/*/stat.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let Some(ppid) = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        for (c, pp) in &parent_of {
            if *pp == p && !found.contains(c) {
                found.push(*c);
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// Runs pgalign and, while it runs, reads the command line and environment of every process
/// under it. Returns its output and what was seen: (command line, environment had PGPASSWORD=pw).
fn run_watching_children(mut c: Command, pw: &str) -> (Output, Vec<(String, bool)>) {
    let dir = tempfile::tempdir().unwrap();
    let (so, se) = (dir.path().join("stdout"), dir.path().join("stderr"));
    c.stdout(std::fs::File::create(&so).unwrap())
        .stderr(std::fs::File::create(&se).unwrap());
    let mut child = c.spawn().expect("run pgalign");
    let root = child.id();
    let needle = format!("PGPASSWORD={pw}");
    let mut seen: Vec<(String, bool)> = Vec::new();
    let mut pids_seen = BTreeSet::new();
    let status = loop {
        for pid in descendants(root) {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let has_pw = env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes());
            if pids_seen.insert((pid, cmdline.clone())) {
                seen.push((cmdline, has_pw));
            }
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(3));
    };
    let o = Output {
        status,
        stdout: std::fs::read(&so).unwrap(),
        stderr: std::fs::read(&se).unwrap(),
    };
    (o, seen)
}

#[test]
fn no_password_on_a_command_line_in_verbose_output_or_in_an_error() {
    let m = moto_or_skip!();
    let (t, s) = two_dbs("CREATE TABLE a (id int);", "CREATE TABLE a (id bigint);");
    let pw = password();
    let src = put_secret(m, REGION, &unique("src"), &rds_json(&s.name, &pw));
    let tgt = put_secret(m, REGION, &unique("tgt"), &rds_json(&t.name, &pw));
    let w = Wrapper::new();
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.sql");

    // The most verbose run there is: --timings.
    let mut c = pgalign_aws(&m.url);
    c.args([
        "plan",
        "--timings",
        "--source",
        &src,
        "--target",
        &tgt,
        "--pg-dump",
    ])
    .arg(w.pg_dump())
    .arg("-o")
    .arg(&plan);
    let (o, seen) = run_watching_children(c, &pw);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(err(&o).contains("timing: "), "{}", err(&o));
    assert_no_leak(&o, &pw);
    let sql = std::fs::read_to_string(&plan).unwrap();
    assert!(
        sql.contains("ALTER TABLE public.a ALTER COLUMN id TYPE bigint"),
        "{sql}"
    );
    assert!(!sql.contains(&pw));

    // The children, seen live in /proc: pg_dump (twice, through the wrapper), and no
    // pg_restore: pgalign reads the archive itself.
    let dumps: Vec<&(String, bool)> = seen
        .iter()
        .filter(|(cl, _)| cl.contains("pg_dump") && cl.contains("--schema-only"))
        .collect();
    assert!(
        dumps.len() >= 2,
        "expected to catch both pg_dumps running: {seen:?}"
    );
    assert!(
        !seen.iter().any(|(cl, _)| cl.contains("pg_restore")),
        "{seen:?}"
    );
    for (cl, _) in &seen {
        assert!(!cl.contains(&pw), "a password on a command line: {cl}");
    }
    // ... and the password went where libpq reads it: the environment.
    assert!(dumps.iter().all(|(_, has)| *has), "{seen:?}");

    // The wrapper's own record agrees.
    let calls = w.calls();
    assert_eq!(calls.matches("argv:").count(), 2, "{calls}");
    assert!(!calls.contains(&pw), "{calls}");
    assert!(calls.contains(" PGPASSWORD "), "{calls}");
    assert!(calls.contains(&format!("dbname={}", s.name)), "{calls}");
    assert_eq!(w.password(), pw);

    // Errors after the secret was read: a database that does not exist, a closed port.
    let gone = put_secret(
        m,
        REGION,
        &unique("gone"),
        &rds_json("pgalign_no_such_db", &pw),
    );
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--timings", "--source", &gone, "--target", &tgt]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("pg_dump failed") && err(&o).contains("pgalign_no_such_db"),
        "{}",
        err(&o)
    );
    assert_no_leak(&o, &pw);

    let closed = serde_json::json!({"username": user(), "password": pw, "host": "127.0.0.1", "port": free_port(), "dbname": "x"}).to_string();
    let closed = put_secret(m, REGION, &unique("closed"), &closed);
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", &closed, "--target", &tgt]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("dumping source"), "{}", err(&o));
    assert_no_leak(&o, &pw);
}

// ---------------------------------------------------------------------------------------------
// TLS

fn server_setting(name: &str) -> String {
    let db = TempDb::new("sm_show");
    db.exec(&format!("SHOW {name}")).unwrap().trim().to_string()
}

/// The local server's certificate (self-signed on Debian: its own CA), when readable.
fn server_cert() -> Option<PathBuf> {
    let cert = PathBuf::from(server_setting("ssl_cert_file"));
    let cert = if cert.is_absolute() {
        cert
    } else {
        PathBuf::from(server_setting("data_directory")).join(cert)
    };
    if std::fs::read(&cert).is_err() {
        eprintln!(
            "SKIP: cannot read the server's certificate {}; verify-ca/verify-full not exercised",
            cert.display()
        );
        return None;
    }
    Some(cert)
}

#[test]
fn sslmode_and_sslrootcert_reach_pg_dump() {
    let m = moto_or_skip!();
    let db = TempDb::new("sm_tls");
    db.exec("CREATE TABLE t (id int);").unwrap();
    let pw = password();
    let arn = put_secret(m, REGION, &unique("tls"), &rds_json(&db.name, &pw));
    let ssl_on = server_setting("ssl") == "on";

    let w = Wrapper::new();
    let mut c = pgalign_aws(&m.url);
    c.args([
        "diff",
        "--source",
        &arn,
        "--target",
        &arn,
        "--sslmode",
        "require",
        "--pg-dump",
    ])
    .arg(w.pg_dump());
    let o = run(c);
    assert!(w.calls().contains("sslmode=require"), "{}", w.calls());
    if ssl_on {
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    } else {
        assert_eq!(o.status.code(), Some(1));
        assert!(err(&o).contains("SSL"), "{}", err(&o));
    }
    assert_no_leak(&o, &pw);

    // verify-full with a CA file that does not exist: libpq, inside pg_dump, names it.
    let w = Wrapper::new();
    let mut c = pgalign_aws(&m.url);
    c.args(["diff", "--source", &arn, "--target", &arn])
        .args([
            "--sslmode",
            "verify-full",
            "--sslrootcert",
            "/nonexistent/rds-global-bundle.pem",
        ])
        .arg("--pg-dump")
        .arg(w.pg_dump());
    let o = run(c);
    assert!(
        w.calls()
            .contains("sslrootcert=/nonexistent/rds-global-bundle.pem"),
        "{}",
        w.calls()
    );
    assert!(w.calls().contains("sslmode=verify-full"), "{}", w.calls());
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("/nonexistent/rds-global-bundle.pem"),
        "{}",
        err(&o)
    );
    assert_no_leak(&o, &pw);

    // The server's own (self-signed) certificate as the CA: verify-ca passes; verify-full then
    // checks the name, and 127.0.0.1 is not the name in that certificate.
    if !ssl_on {
        eprintln!("SKIP: the local server has ssl=off; verify-ca/verify-full not exercised");
        return;
    }
    let Some(cert) = server_cert() else {
        return;
    };
    let mut c = pgalign_aws(&m.url);
    c.args([
        "diff",
        "--source",
        &arn,
        "--target",
        &arn,
        "--sslmode",
        "verify-ca",
        "--sslrootcert",
    ])
    .arg(&cert);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));

    let mut c = pgalign_aws(&m.url);
    c.args([
        "diff",
        "--source",
        &arn,
        "--target",
        &arn,
        "--sslmode",
        "verify-full",
        "--sslrootcert",
    ])
    .arg(&cert);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("does not match host name"), "{}", err(&o));
    assert_no_leak(&o, &pw);

    // ... and verify-full passes when the secret names the host the certificate was made for.
    if !cert_names_localhost(&cert) {
        return;
    }
    let mut local = serde_json::from_str::<serde_json::Value>(&rds_json(&db.name, &pw)).unwrap();
    local["host"] = "localhost".into();
    let arn = put_secret(m, REGION, &unique("tls-local"), &local.to_string());
    let mut c = pgalign_aws(&m.url);
    c.args([
        "diff",
        "--source",
        &arn,
        "--target",
        &arn,
        "--sslmode",
        "verify-full",
        "--sslrootcert",
    ])
    .arg(&cert);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

/// Whether the certificate is made out to `localhost` (Debian's snakeoil certificate is made out
/// to the machine's host name, which is `localhost` in these containers).
fn cert_names_localhost(cert: &std::path::Path) -> bool {
    let o = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
            "-in",
        ])
        .arg(cert)
        .output();
    let names = o.map(|o| out(&o)).unwrap_or_default();
    let yes = names.contains("DNS:localhost") || names.contains("CN = localhost");
    if !yes {
        eprintln!("SKIP: the server's certificate is not made out to localhost ({names:?}); verify-full success not exercised");
    }
    yes
}

#[test]
fn secrets_pointing_at_rds_default_to_sslmode_require() {
    let m = moto_or_skip!();
    let pw = password();
    let value = serde_json::json!({
        "username": "app", "password": pw, "engine": "postgres",
        "host": "app-db.abcdefghijkl.eu-west-1.rds.amazonaws.com", "port": 5432,
        "dbname": "app", "dbInstanceIdentifier": "app-db"
    })
    .to_string();
    let arn = put_secret(m, REGION, &unique("rds"), &value);

    // The wrapper records the arguments and refuses to connect anywhere.
    let w = Wrapper::new();
    let mut c = pgalign_aws(&m.url);
    c.args(["plan", "--source", &arn, "--target", &arn, "--pg-dump"])
        .arg(w.pg_dump());
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("test wrapper: not connecting"),
        "{}",
        err(&o)
    );
    let calls = w.calls();
    assert!(
        calls.contains("host=app-db.abcdefghijkl.eu-west-1.rds.amazonaws.com")
            && calls.contains("sslmode=require"),
        "{calls}"
    );
    assert_no_leak(&o, &pw);

    // The user's choice wins.
    let w = Wrapper::new();
    let mut c = pgalign_aws(&m.url);
    c.args([
        "plan",
        "--source",
        &arn,
        "--target",
        &arn,
        "--sslmode",
        "verify-full",
        "--pg-dump",
    ])
    .arg(w.pg_dump());
    run(c);
    assert!(w.calls().contains("sslmode=verify-full"), "{}", w.calls());
    assert!(!w.calls().contains("sslmode=require"), "{}", w.calls());
}

/// apply opens its own connection (tokio-postgres + rustls) before any pg_dump runs: the same
/// --sslmode / --sslrootcert must mean the same there.
#[test]
fn apply_connection_honours_the_same_tls_settings() {
    let m = moto_or_skip!();
    if !apply_available() {
        eprintln!("SKIP: `pgalign apply` does not exist yet");
        return;
    }
    if server_setting("ssl") != "on" {
        eprintln!("SKIP: the local server has ssl=off");
        return;
    }
    let Some(cert) = server_cert() else {
        return;
    };
    let (t, s) = two_dbs(
        "CREATE TABLE a (id int);",
        "CREATE TABLE a (id int); CREATE TABLE b (id int);",
    );
    let pw = password();
    let src = put_secret(m, REGION, &unique("src"), &rds_json(&s.name, &pw));
    let tgt = put_secret(m, REGION, &unique("tgt"), &rds_json(&t.name, &pw));
    let b_exists = || {
        t.exec("SELECT count(*) FROM pg_class WHERE relname = 'b'")
            .unwrap()
            .trim()
            .to_string()
    };

    // verify-full: the certificate does not name 127.0.0.1. Refused by apply's own connection,
    // before any pg_dump ran (the wrapper saw only --version).
    let w = Wrapper::new();
    let mut c = pgalign_aws(&m.url);
    c.args([
        "apply",
        "--source",
        &src,
        "--target",
        &tgt,
        "--sslmode",
        "verify-full",
        "--sslrootcert",
    ])
    .arg(&cert)
    .arg("--pg-dump")
    .arg(w.pg_dump());
    let o = run(c);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("connecting to target"), "{}", err(&o));
    assert!(
        err(&o).to_lowercase().contains("certificate"),
        "{}",
        err(&o)
    );
    assert_eq!(
        w.calls(),
        "",
        "pg_dump ran before apply's connection was refused"
    );
    assert_no_leak(&o, &pw);
    assert_eq!(b_exists(), "0");

    // A CA file that does not exist.
    let mut c = pgalign_aws(&m.url);
    c.args(["apply", "--source", &src, "--target", &tgt]).args([
        "--sslmode",
        "verify-ca",
        "--sslrootcert",
        "/nonexistent/ca.pem",
    ]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("/nonexistent/ca.pem"), "{}", err(&o));
    assert_eq!(b_exists(), "0");

    // verify-ca with the server's certificate: both apply and pg_dump verify it and go ahead.
    let w = Wrapper::new();
    let mut c = pgalign_aws(&m.url);
    c.args([
        "apply",
        "--source",
        &src,
        "--target",
        &tgt,
        "--sslmode",
        "verify-ca",
        "--sslrootcert",
    ])
    .arg(&cert)
    .arg("--pg-dump")
    .arg(w.pg_dump());
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(w.calls().contains("sslmode=verify-ca"), "{}", w.calls());
    assert_eq!(b_exists(), "1");
    assert_no_leak(&o, &pw);

    // verify-full through host names the certificate covers: apply connects and verifies.
    if !cert_names_localhost(&cert) {
        return;
    }
    s.exec("CREATE TABLE c (id int);").unwrap();
    let local = |db: &TempDb| {
        let mut v = serde_json::from_str::<serde_json::Value>(&rds_json(&db.name, &pw)).unwrap();
        v["host"] = "localhost".into();
        v.to_string()
    };
    let src = put_secret(m, REGION, &unique("src-local"), &local(&s));
    let tgt = put_secret(m, REGION, &unique("tgt-local"), &local(&t));
    let mut c = pgalign_aws(&m.url);
    c.args([
        "apply",
        "--source",
        &src,
        "--target",
        &tgt,
        "--sslmode",
        "verify-full",
        "--sslrootcert",
    ])
    .arg(&cert);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert_eq!(
        t.exec("SELECT count(*) FROM pg_class WHERE relname = 'c'")
            .unwrap()
            .trim(),
        "1"
    );
}
