//! One error path for bad input (issue 13): a table of bad files, URLs, libpq strings, flags,
//! JSON plans, secrets and environments. For each: exit 1, one line on stderr that starts with
//! `pgalign: error:` and names what was wrong, no panic, no password, and TARGET unchanged.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every password in this file; none of it (nor its first half) may reach any output.
const PW: &str = "S3cretPW42";

struct Case {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    /// Text the one line must contain (case-insensitive): what was wrong.
    names: &'static str,
}

fn case(name: &'static str, args: &[&str], names: &'static str) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        names,
    }
}

fn with_env(mut c: Case, env: &[(&'static str, &str)]) -> Case {
    c.env = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    c
}

fn write(dir: &Path, name: &str, content: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p.to_str().unwrap().to_string()
}

fn fixture(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .to_str()
        .unwrap()
        .to_string()
}

/// One TOC entry as pg_dump writes it in a plain dump: its header, then `body`.
fn entry(header: &str, body: &str) -> String {
    format!("--\n-- {header}; Schema: public; Owner: -\n--\n\n{body}")
}

/// The staging dump with `entry` appended as one more TOC entry.
fn dump_with(entry: impl AsRef<str>) -> Vec<u8> {
    let entry = entry.as_ref();
    let base = std::fs::read_to_string(fixture("fixtures/dumps/staging.sql")).unwrap();
    format!("{base}\n{entry}\n").into_bytes()
}

/// A JSON plan from the fixture dumps (no server needed to make one).
fn json_plan(dir: &Path) -> serde_json::Value {
    let path = dir.join("good-plan.json");
    let o = pgalign(&[
        "plan",
        "--source",
        &fixture("fixtures/dumps/staging.sql"),
        "--target",
        &fixture("fixtures/dumps/production.dump"),
        "--format",
        "json",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_bad_input_is_one_line_exit_1_and_changes_nothing() {
    let target = TempDb::new("bad_input_t");
    target
        .exec("CREATE TABLE canary (id int); INSERT INTO canary SELECT generate_series(1, 3);")
        .unwrap();
    let before = target.dump(&[]);
    let tgt = target.url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let staging = fixture("fixtures/dumps/staging.sql");
    let production = fixture("fixtures/dumps/production.dump");
    let host = host();
    let port = port();
    let user = user();

    // Files.
    let empty = write(d, "empty.sql", b"");
    let garbage = write(
        d,
        "garbage.sql",
        &[0x00, 0xff, 0xfe, 0x13, 0x37, 0x00, 0x42],
    );
    let prose = write(
        d,
        "prose.sql",
        b"Dear reviewer,\nthis is not a schema dump.\n",
    );
    let fake_custom = write(
        d,
        "fake.dump",
        b"PGDMP\x01\x0e\x00 nonsense after the magic",
    );
    let with_data = write(
        d,
        "data.sql",
        &dump_with(entry("Data for Name: customers; Type: TABLE DATA", "COPY public.customers (id, email, name, created_at) FROM stdin;\n1\ta@b.c\tA\t2024-01-01 00:00:00+00\n\\.\n")),
    );
    let dumpall = write(
        d,
        "dumpall.sql",
        b"--\n-- PostgreSQL database cluster dump\n--\n\nCREATE ROLE app;\nALTER ROLE app WITH LOGIN;\n\n\\connect template1\n\nCREATE DATABASE app WITH TEMPLATE = template0;\n\\connect app\n",
    );
    let hidden = write(
        d,
        "hidden.sql",
        &dump_with(entry(
            "Name: y; Type: TABLE",
            "CREATE TABLE public.y (\n    id integer\n); DELETE FROM public.canary;\n",
        )),
    );
    let broken_domain = write(
        d,
        "broken-domain.sql",
        &dump_with(entry(
            "Name: d; Type: DOMAIN",
            "CREATE DOMAIN public.d AS\n",
        )),
    );
    let cut_constraint = write(
        d,
        "cut.sql",
        &dump_with(entry(
            "Name: customers customers_x; Type: CONSTRAINT",
            "ALTER TABLE ONLY public.customers\n    ADD CONSTRAINT\n",
        )),
    );
    let long = "n".repeat(70);
    let long_name = write(
        d,
        "long-name.sql",
        &dump_with(entry(
            &format!("Name: {long}; Type: TABLE"),
            &format!("CREATE TABLE public.{long} (\n    id integer\n);\n"),
        )),
    );
    let empty_grant = write(
        d,
        "empty-grant.sql",
        &dump_with(entry(
            "Name: TABLE customers; Type: ACL",
            "GRANT ON TABLE public.customers TO PUBLIC;\n",
        )),
    );
    let empty_revoke = write(
        d,
        "empty-revoke.sql",
        &dump_with(entry(
            "Name: TABLE customers; Type: ACL",
            "REVOKE ON TABLE public.customers FROM PUBLIC;\n",
        )),
    );
    let invalid_utf8 = write(
        d,
        "latin1.sql",
        &dump_with(entry(
            "Name: TABLE customers; Type: COMMENT",
            "COMMENT ON TABLE public.customers IS 'caf\u{e9}';\n",
        ))
        .into_iter()
        .map(|b| if b == 0xc3 { 0xe9 } else { b })
        .filter(|b| *b != 0xa9)
        .collect::<Vec<u8>>(),
    );
    let nul_in_dump = write(
        d,
        "nul.sql",
        &dump_with(entry(
            "Name: z; Type: TABLE",
            "CREATE TABLE public.z (\n    id integer\0\n);\n",
        )),
    );
    let insert_data = write(
        d,
        "inserts.sql",
        &dump_with(entry(
            "Data for Name: customers; Type: TABLE DATA",
            "INSERT INTO public.customers VALUES (1, 'a@b.c', 'A', now());\n",
        )),
    );
    let do_block = write(
        d,
        "do.sql",
        &dump_with(entry(
            "Name: f; Type: FUNCTION",
            "DO $$BEGIN DELETE FROM public.canary; END$$;\n",
        )),
    );
    let json_as_dump = write(d, "plan-as-dump.sql", b"{\"format\": 2, \"steps\": []}\n");
    std::fs::create_dir(d.join("a-directory.sql")).unwrap();
    let a_directory = d.join("a-directory.sql").to_str().unwrap().to_string();

    // Plans.
    let good = json_plan(d);
    let edited = |name: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let mut p = good.clone();
        f(&mut p);
        write(
            d,
            name,
            serde_json::to_string_pretty(&p).unwrap().as_bytes(),
        )
    };
    let plan_sql_edited = edited("p-sql.json", &|p| {
        p["steps"][0]["sql"] = "DELETE FROM public.canary;".into()
    });
    let plan_hazard_removed = edited("p-hazard.json", &|p| {
        for s in p["steps"].as_array_mut().unwrap() {
            s["hazards"] = serde_json::json!([]);
        }
    });
    let plan_timeout_edited = edited("p-timeout.json", &|p| {
        p["steps"][0]["lock_timeout"] = "1s'; DELETE FROM public.canary; --".into()
    });
    let plan_no_digest = edited("p-nodigest.json", &|p| {
        p.as_object_mut().unwrap().remove("digest");
    });
    let plan_old_format = edited("p-format.json", &|p| p["format"] = 1.into());
    let plan_index_edited = edited("p-index.json", &|p| {
        p["steps"][0]["replaces_invalid_index"] = "x; DELETE FROM public.canary".into()
    });
    let plan_not_json = write(d, "p-not.json", b"this is not json");
    let plan_wrong_shape = write(d, "p-shape.json", b"{\"a\": 1}");
    let plan_sql_script = write(d, "p-script.json", b"-- pgalign migration\nDROP TABLE x;\n");

    let url = |rest: &str| format!("postgres://{user}@{host}:{port}/{rest}");
    let cases: Vec<Case> = vec![
        // Dump files.
        case(
            "missing file",
            &[
                "plan",
                "--source",
                "/nonexistent/schema.sql",
                "--target",
                &production,
            ],
            "/nonexistent/schema.sql",
        ),
        case(
            "a directory",
            &["plan", "--source", &a_directory, "--target", &production],
            "a-directory.sql",
        ),
        case(
            "empty file",
            &["plan", "--source", &empty, "--target", &production],
            "empty.sql",
        ),
        case(
            "binary garbage",
            &["plan", "--source", &garbage, "--target", &production],
            "garbage.sql",
        ),
        case(
            "prose",
            &["plan", "--source", &prose, "--target", &production],
            "prose.sql",
        ),
        case(
            "custom magic over nonsense",
            &["plan", "--source", &fake_custom, "--target", &production],
            "not a readable pg_dump custom-format archive",
        ),
        case(
            "dump with data (COPY)",
            &["plan", "--source", &with_data, "--target", &production],
            "schema-only",
        ),
        case(
            "dump with data (INSERT)",
            &["plan", "--source", &insert_data, "--target", &production],
            "schema-only",
        ),
        case(
            "pg_dumpall output",
            &["plan", "--source", &dumpall, "--target", &production],
            "pg_dumpall",
        ),
        case(
            "statement hidden in an entry",
            &["plan", "--source", &hidden, "--target", &production],
            "Name: y; Type: TABLE",
        ),
        case(
            "DO block in a function entry",
            &["plan", "--source", &do_block, "--target", &production],
            "Name: f; Type: FUNCTION",
        ),
        case(
            "truncated CREATE DOMAIN",
            &["plan", "--source", &broken_domain, "--target", &production],
            "Name: d; Type: DOMAIN",
        ),
        case(
            "ADD CONSTRAINT cut at the end",
            &["plan", "--source", &cut_constraint, "--target", &production],
            "customers_x",
        ),
        case(
            "name over 63 bytes",
            &["plan", "--source", &long_name, "--target", &production],
            "63",
        ),
        case(
            "GRANT with no privileges",
            &["plan", "--source", &empty_grant, "--target", &production],
            "customers",
        ),
        case(
            "REVOKE with no privileges",
            &["plan", "--source", &empty_revoke, "--target", &production],
            "customers",
        ),
        case(
            "invalid UTF-8",
            &["plan", "--source", &invalid_utf8, "--target", &production],
            "utf-8",
        ),
        case(
            "NUL byte in a statement",
            &["plan", "--source", &nul_in_dump, "--target", &production],
            "nul.sql",
        ),
        with_env(
            case(
                "SOURCE_SCHEMA_DIR that is not a directory",
                &["plan", "--target", &production],
                "SOURCE_SCHEMA_DIR",
            ),
            &[("SOURCE_SCHEMA_DIR", "/nonexistent/schema")],
        ),
        case(
            "a file as the scratch server",
            &[
                "plan",
                "--source",
                &prose,
                "--target",
                &production,
                "--scratch",
                &staging,
            ],
            "scratch server",
        ),
        case(
            "a JSON plan as a dump",
            &["plan", "--source", &json_as_dump, "--target", &production],
            "plan-as-dump.sql",
        ),
        case(
            "bad dump as target",
            &["diff", "--source", &staging, "--target", &hidden],
            "Name: y; Type: TABLE",
        ),
        case(
            "apply onto a dump file",
            &["apply", "--source", &staging, "--target", &production],
            "dump file",
        ),
        // URLs.
        case(
            "nothing listens there",
            &[
                "diff",
                "--source",
                &format!("postgres://u:{PW}@127.0.0.1:1/db"),
                "--target",
                &tgt,
            ],
            "127.0.0.1",
        ),
        case(
            "host does not resolve",
            &[
                "diff",
                "--source",
                &format!("postgres://u:{PW}@no-such-host.invalid/db"),
                "--target",
                &tgt,
            ],
            "no-such-host.invalid",
        ),
        case(
            "scheme typo postgress",
            &[
                "diff",
                "--source",
                &format!("postgress://u:{PW}@h/db"),
                "--target",
                &tgt,
            ],
            "postgres",
        ),
        case(
            "scheme with one slash",
            &[
                "diff",
                "--source",
                &format!("postgres:/u:{PW}@h/db"),
                "--target",
                &tgt,
            ],
            "postgres",
        ),
        case(
            "no host after userinfo",
            &[
                "diff",
                "--source",
                &format!("postgres://u:{PW}/db"),
                "--target",
                &tgt,
            ],
            "port",
        ),
        case(
            "slash in the password",
            &[
                "diff",
                "--source",
                &format!("postgres://u:{}/{}@h/db", &PW[..5], &PW[5..]),
                "--target",
                &tgt,
            ],
            "url-encoded",
        ),
        case(
            "question mark in the password",
            &[
                "diff",
                "--source",
                &format!("postgres://u:{}?{}@h/db", &PW[..5], &PW[5..]),
                "--target",
                &tgt,
            ],
            "url-encoded",
        ),
        case(
            "JDBC URL",
            &[
                "diff",
                "--source",
                &format!("jdbc:postgresql://h:5432/db?user=u&password={PW}"),
                "--target",
                &tgt,
            ],
            "jdbc",
        ),
        case(
            "port not a number",
            &[
                "diff",
                "--source",
                &format!("postgres://{host}:notaport/db"),
                "--target",
                &tgt,
            ],
            "port",
        ),
        case(
            "port out of range",
            &[
                "diff",
                "--source",
                &format!("postgres://{host}:99999/db"),
                "--target",
                &tgt,
            ],
            "port",
        ),
        case(
            "bad percent-encoding",
            &[
                "diff",
                "--source",
                &format!("postgres://u%zz:{PW}@{host}/db"),
                "--target",
                &tgt,
            ],
            "percent-encoding",
        ),
        case(
            "database does not exist",
            &[
                "diff",
                "--source",
                &url("pgalign_no_such_db_xyz"),
                "--target",
                &tgt,
            ],
            "pgalign_no_such_db_xyz",
        ),
        case(
            "role does not exist",
            &[
                "diff",
                "--source",
                &format!("postgres://pgalign_no_such_role:{PW}@{host}:{port}/postgres"),
                "--target",
                &tgt,
            ],
            "pgalign_no_such_role",
        ),
        case(
            "sslmode in the URL unknown",
            &[
                "diff",
                "--source",
                &format!("{}?sslmode=sometimes", url("postgres")),
                "--target",
                &tgt,
            ],
            "sslmode",
        ),
        // libpq keyword strings.
        case(
            "bare token",
            &[
                "diff",
                "--source",
                &format!("host={host} password={PW} junk"),
                "--target",
                &tgt,
            ],
            "word 3",
        ),
        case(
            "bare token that is a password",
            &[
                "diff",
                "--source",
                &format!("host={host} {PW}"),
                "--target",
                &tgt,
            ],
            "keyword",
        ),
        case(
            "unterminated quote",
            &[
                "diff",
                "--source",
                &format!("host='{host} password={PW}"),
                "--target",
                &tgt,
            ],
            "quote",
        ),
        case(
            "unknown keyword",
            &[
                "diff",
                "--source",
                &format!("host={host} colour=blue password={PW}"),
                "--target",
                &tgt,
            ],
            "libpq keyword",
        ),
        case(
            "port keyword not a number",
            &[
                "diff",
                "--source",
                &format!("host={host} port=abc password={PW}"),
                "--target",
                &tgt,
            ],
            "port",
        ),
        // Flags.
        case(
            "unknown flag",
            &["plan", "--no-such-flag"],
            "--no-such-flag",
        ),
        case("unknown format", &["plan", "--format", "yaml"], "yaml"),
        case(
            "unknown color",
            &["diff", "--color", "sometimes"],
            "sometimes",
        ),
        case("unknown subcommand", &["frobnicate"], "frobnicate"),
        case("no subcommand", &[], "subcommand"),
        case(
            "SQL in --lock-timeout",
            &[
                "apply",
                "--source",
                &staging,
                "--target",
                &tgt,
                "--lock-timeout",
                "1s'; DROP TABLE public.canary; --",
            ],
            "--lock-timeout",
        ),
        case(
            "negative --statement-timeout",
            &[
                "apply",
                "--source",
                &staging,
                "--target",
                &tgt,
                "--statement-timeout=-1s",
            ],
            "--statement-timeout",
        ),
        case(
            "--lock-wait nan",
            &[
                "apply",
                "--source",
                &staging,
                "--target",
                &tgt,
                "--lock-wait",
                "nan",
            ],
            "nan",
        ),
        case(
            "--lock-wait inf",
            &[
                "apply",
                "--source",
                &staging,
                "--target",
                &tgt,
                "--lock-wait",
                "inf",
            ],
            "inf",
        ),
        case(
            "--lock-wait 1e30s",
            &[
                "apply",
                "--source",
                &staging,
                "--target",
                &tgt,
                "--lock-wait",
                "1e30s",
            ],
            "1e30s",
        ),
        case(
            "--lock-timeout without a unit",
            &["plan", "--lock-timeout", "30"],
            "unit",
        ),
        case(
            "--lock-retries too many",
            &["apply", "--lock-retries", "1000"],
            "1000",
        ),
        case(
            "unknown hazard",
            &[
                "apply",
                "--source",
                &staging,
                "--target",
                &tgt,
                "--allow-hazards",
                "data-loss,everything",
            ],
            "everything",
        ),
        case(
            "unknown sslmode flag",
            &["plan", "--sslmode", "maybe"],
            "maybe",
        ),
        case(
            "--dump-lock-timeout 0",
            &["plan", "--dump-lock-timeout", "0"],
            "--dump-lock-timeout",
        ),
        case(
            "missing sslrootcert",
            &[
                "diff",
                "--source",
                &url("postgres"),
                "--target",
                &tgt,
                "--sslmode",
                "verify-full",
                "--sslrootcert",
                "/nonexistent/ca.pem",
            ],
            "/nonexistent/ca.pem",
        ),
        case(
            "--pg-dump that does not exist",
            &[
                "diff",
                "--source",
                &url("postgres"),
                "--target",
                &tgt,
                "--pg-dump",
                "/nonexistent/pg_dump",
            ],
            "/nonexistent/pg_dump",
        ),
        case(
            "--pg-dump that is not pg_dump",
            &[
                "diff",
                "--source",
                &url("postgres"),
                "--target",
                &tgt,
                "--pg-dump",
                "/bin/true",
            ],
            "pg_dump",
        ),
        case(
            "--schema on neither side",
            &[
                "diff",
                "--source",
                &staging,
                "--target",
                &production,
                "--schema",
                "no_such_schema",
            ],
            "no_such_schema",
        ),
        case(
            "unwritable --report",
            &[
                "apply",
                "--source",
                &staging,
                "--target",
                &tgt,
                "--allow-all-hazards",
                "--report",
                "/nonexistent/dir/r.json",
            ],
            "/nonexistent/dir/r.json",
        ),
        case(
            "unwritable -o",
            &[
                "plan",
                "--source",
                &staging,
                "--target",
                &production,
                "-o",
                "/nonexistent/dir/plan.sql",
            ],
            "/nonexistent/dir/plan.sql",
        ),
        // Reviewed plans.
        case(
            "plan file missing",
            &[
                "apply",
                "--plan",
                "/nonexistent/plan.json",
                "--target",
                &tgt,
            ],
            "/nonexistent/plan.json",
        ),
        case(
            "plan not JSON",
            &["apply", "--plan", &plan_not_json, "--target", &tgt],
            "not a pgalign plan",
        ),
        case(
            "plan of another shape",
            &["apply", "--plan", &plan_wrong_shape, "--target", &tgt],
            "not a pgalign plan",
        ),
        case(
            "SQL script given as plan",
            &["apply", "--plan", &plan_sql_script, "--target", &tgt],
            "not a pgalign plan",
        ),
        case(
            "plan SQL edited",
            &[
                "apply",
                "--plan",
                &plan_sql_edited,
                "--target",
                &tgt,
                "--allow-all-hazards",
            ],
            "digest",
        ),
        case(
            "plan hazards removed",
            &["apply", "--plan", &plan_hazard_removed, "--target", &tgt],
            "digest",
        ),
        case(
            "plan timeout edited",
            &[
                "apply",
                "--plan",
                &plan_timeout_edited,
                "--target",
                &tgt,
                "--allow-all-hazards",
            ],
            "duration",
        ),
        case(
            "plan without digest",
            &[
                "apply",
                "--plan",
                &plan_no_digest,
                "--target",
                &tgt,
                "--allow-all-hazards",
            ],
            "digest",
        ),
        case(
            "plan of an old format",
            &[
                "apply",
                "--plan",
                &plan_old_format,
                "--target",
                &tgt,
                "--allow-all-hazards",
            ],
            "format",
        ),
        case(
            "plan index name edited",
            &[
                "apply",
                "--plan",
                &plan_index_edited,
                "--target",
                &tgt,
                "--allow-all-hazards",
            ],
            "digest",
        ),
        // Secrets and the environment.
        with_env(
            case(
                "secret ARN without a region",
                &[
                    "diff",
                    "--source",
                    "arn:aws:secretsmanager",
                    "--target",
                    &tgt,
                ],
                "arn",
            ),
            &[("AWS_EC2_METADATA_DISABLED", "true")],
        ),
        with_env(
            case(
                "Secrets Manager unreachable",
                &[
                    "diff",
                    "--source",
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf",
                    "--target",
                    &tgt,
                ],
                "app-AbCdEf",
            ),
            &[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", PW),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ],
        ),
        with_env(
            case(
                "secret: with no name",
                &["diff", "--source", "secret:", "--target", &tgt],
                "secret",
            ),
            &[],
        ),
        with_env(
            case("no source at all", &["diff", "--target", &tgt], "source"),
            &[],
        ),
        with_env(
            case(
                "bad SOURCE_DATABASE_URL",
                &["diff", "--target", &tgt],
                "SOURCE_DATABASE_URL",
            ),
            &[("SOURCE_DATABASE_URL", &format!("postgress://u:{PW}@h/db"))],
        ),
        with_env(
            case(
                "PGPORT not a number",
                &[
                    "diff",
                    "--source",
                    &format!("postgres://{user}@{host}/postgres"),
                    "--target",
                    &tgt,
                ],
                "port",
            ),
            &[("PGPORT", "abc")],
        ),
        with_env(
            case(
                "PG_DUMP not a pg_dump",
                &["diff", "--source", &url("postgres"), "--target", &tgt],
                "pg_dump",
            ),
            &[("PG_DUMP", "/bin/false"), ("PATH", "/nonexistent")],
        ),
    ];
    assert!(cases.len() >= 60, "only {} bad inputs", cases.len());

    let mut failures = Vec::new();
    for c in &cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgalign"));
        cmd.args(&c.args).env("NO_COLOR", "1");
        for var in [
            "SOURCE_DATABASE_URL",
            "TARGET_DATABASE_URL",
            "SOURCE_DB_SECRETS",
            "TARGET_DB_SECRETS",
            "SOURCE_SCHEMA_DIR",
            "TARGET_SCHEMA_DIR",
        ] {
            cmd.env_remove(var);
        }
        // SQL files (prose.sql) load on the test server: quicker than a throwaway server.
        cmd.env(
            "PGALIGN_SCRATCH_URL",
            format!("postgres://{user}@{host}:{port}/postgres"),
        );
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let mut wrong = Vec::new();
        if o.status.code() != Some(1) {
            wrong.push(format!("exit {:?}", o.status.code()));
        }
        if err.trim_end().lines().count() != 1 {
            wrong.push("not one line".to_string());
        }
        if !err.starts_with("pgalign: error: ") {
            wrong.push("no `pgalign: error:`".to_string());
        }
        if err.contains("panicked") {
            wrong.push("panicked".to_string());
        }
        if err.contains(&PW[..5]) || out.contains(&PW[..5]) || err.contains(&PW[5..]) {
            wrong.push("shows the password".to_string());
        }
        if !err.to_lowercase().contains(&c.names.to_lowercase()) {
            wrong.push(format!("does not name {:?}", c.names));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}: {}",
                c.name,
                wrong.join(", "),
                err.trim_end()
            ));
        }
    }
    assert_eq!(
        target.exec("SELECT count(*) FROM canary").unwrap().trim(),
        "3"
    );
    assert_eq!(
        target
            .dump(&[])
            .lines()
            .filter(|l| !l.starts_with('\\'))
            .collect::<Vec<_>>(),
        before
            .lines()
            .filter(|l| !l.starts_with('\\'))
            .collect::<Vec<_>>(),
        "the target changed"
    );
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs were not handled:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!("{} bad inputs, each exit 1 on one line", cases.len());
}
