//! Unit tests of endpoint.rs (kept apart: the module is long enough).

use super::*;

#[test]
fn url_with_password_keeps_it_out_of_conninfo_and_debug() {
    let c = parse_url("postgres://app:s%3Acret@db.example.com:6543/prod?sslmode=require").unwrap();
    assert_eq!(c.password(), Some("s:cret"));
    assert_eq!(
        c.conninfo(),
        "dbname=prod host=db.example.com port=6543 sslmode=require user=app"
    );
    assert!(!format!("{c:?}").contains("s:cret"));
    assert!(!format!("{c}").contains("s:cret"));
    assert_eq!(format!("{c}"), "app@db.example.com:6543/prod");
}

#[test]
fn keyword_strings() {
    let c = parse_keywords("host=localhost dbname='my db' password='p w\\'x'").unwrap();
    assert_eq!(c.get("dbname"), Some("my db"));
    assert_eq!(c.password(), Some("p w'x"));
    assert_eq!(c.conninfo(), "dbname='my db' host=localhost");
    assert!(parse_keywords("host").is_err());
}

#[test]
fn endpoint_kinds() {
    assert!(matches!(
        Endpoint::parse("postgresql://localhost/x").unwrap(),
        Endpoint::Database(_)
    ));
    for arn in [
        "arn:aws:secretsmanager:us-east-1:1:secret:a",
        "arn:aws-cn:secretsmanager:cn-north-1:1:secret:a",
        "arn:aws-us-gov:secretsmanager:us-gov-west-1:1:secret:a",
    ] {
        assert!(
            matches!(Endpoint::parse(arn).unwrap(), Endpoint::Secret(_)),
            "{arn}"
        );
    }
    assert!(matches!(
        Endpoint::parse("secret:prod/db").unwrap(),
        Endpoint::Secret(_)
    ));
    let e = Endpoint::parse("nothing/here.sql").unwrap_err();
    assert!(e.to_string().contains("no such file"));
    assert!(parse_url("postgres://h:notaport/db").is_err());
}

#[test]
fn redact_hides_userinfo_and_password_values() {
    for (text, want) in [
        ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
        ("postgress://u:pw@h:5/db", "postgress://u:***@h:5/db"),
        ("postgres:/u:pw@h/db", "postgres:/u:***@h/db"),
        (
            "jdbc:postgresql://u:pw@h/db",
            "jdbc:postgresql://u:***@h/db",
        ),
        // Unencoded / ? # @ in the password: the userinfo runs to the last @.
        ("postgres://u:pa/s?s#w@rd@h/db", "postgres://u:***@h/db"),
        // No @ at all: the password sits where the port belongs.
        ("postgres://u:pw/db", "postgres://u:***/db"),
        ("postgres://h:5432/db", "postgres://h:5432/db"),
        ("postgres://u@h/db", "postgres://u@h/db"),
        ("postgres://u@[::1]:5432/db", "postgres://u@[::1]:5432/db"),
        (
            "reading u:pw@h/db: no such file",
            "reading u:***@h/db: no such file",
        ),
        (
            "dumping source u@h:5432/db: failed",
            "dumping source u@h:5432/db: failed",
        ),
        ("C:/dumps/x.sql", "C:/dumps/x.sql"),
        (
            "secret arn:aws:secretsmanager:r:1:secret:ops@db-AbC: not found",
            "secret arn:aws:secretsmanager:r:1:secret:ops@db-AbC: not found",
        ),
        (
            "host=h password=pw dbname=d",
            "host=h password=*** dbname=d",
        ),
        (
            "host=h password = 'p w\\'x' dbname=d",
            "host=h password = '***' dbname=d",
        ),
        (
            "sslpassword=k PGPASSWORD=pw",
            "sslpassword=*** PGPASSWORD=***",
        ),
        (
            "postgres://h/db?user=u&password=pw&sslmode=require",
            "postgres://h/db?user=u&password=***&sslmode=require",
        ),
        (
            "jdbc:postgresql://h/db?password=pw",
            "jdbc:postgresql://h/db?password=***",
        ),
        (
            r#"{"username":"u","password": "p\"w"}"#,
            r#"{"username":"u","password": "***"}"#,
        ),
        (
            "password authentication failed for user \"u\"",
            "password authentication failed for user \"u\"",
        ),
        ("no password: set PGPASSWORD", "no password: set PGPASSWORD"),
        ("", ""),
    ] {
        assert_eq!(redact(text), want, "{text}");
    }
}

#[test]
fn errors_never_repeat_a_password() {
    for bad in [
        "postgress://u:S3cretPW42@h/db",
        "postgres:/u:S3cretPW42@h/db",
        "postgresql:/u:S3cretPW42@h/db",
        "postgre://u:S3cretPW42@h/db",
        "POSTGRES://u:S3cretPW42@h/db",
        "postgres://u:S3cretPW42/db",
        "postgres://u:S3cret/PW42@h/db",
        "postgres://u:S3cret?PW42@h/db",
        "postgres://u:12/S3cretPW42@h/db",
        "postgres://u:12?S3cretPW42@h/db",
        "postgres://u:12?S3cret=PW42@h/db",
        "postgres://u:S3cret%zzPW42@h/db",
        "postgres://u:S3cretPW42@h/db?password=S3cretPW42&x",
        "host=h password=S3cretPW42 junk",
        "host=h S3cretPW42",
        "host=h password='S3cret PW42' junk",
        "host=h password=S3cret PW42=x",
        "host=h password='S3cretPW42",
        "jdbc:postgresql://h:5432/db?user=u&password=S3cretPW42",
        "u:S3cretPW42@h/db",
        "postgres:u:S3cretPW42@h/db",
        "missing/u:S3cretPW42@h.sql",
        r#"secret:{"password":"S3cretPW42"}"#,
        r#"arn:aws:secretsmanager:{"password":"S3cretPW42"}"#,
    ] {
        let e = format!("{:#}", Endpoint::parse(bad).unwrap_err());
        assert!(!e.contains("S3cret") && !e.contains("PW42"), "{bad}: {e}");
    }
    let e = Endpoint::parse("jdbc:postgresql://h/db")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("postgres://user@host:port/db") && e.contains("PGPASSWORD"),
        "{e}"
    );
    let e = Endpoint::parse("postgress://h/db").unwrap_err().to_string();
    assert!(
        e.contains("the scheme postgress is not postgres or postgresql"),
        "{e}"
    );
    let e = Endpoint::parse("host=h dbnmae=x").unwrap_err().to_string();
    assert!(e.contains("did you mean dbname?"), "{e}");
    // What still parses: a # or @ in the password (the userinfo ends at the last @), and
    // every libpq keyword.
    let c = parse_url("postgres://u:pa#ss@w@h:5/db?sslmode=require&connect_timeout=3").unwrap();
    assert_eq!(c.password(), Some("pa#ss@w"));
    assert_eq!(
        c.conninfo(),
        "connect_timeout=3 dbname=db host=h port=5 sslmode=require user=u"
    );
}

#[test]
fn debug_output_holds_no_password() {
    let eps = [
        Endpoint::parse("postgres://u:S3cretPW42@h/db").unwrap(),
        Endpoint::parse("host=h password='S3cret PW42'").unwrap(),
        Endpoint::Secret(r#"{"username":"u","password":"S3cretPW42"}"#.into()),
        Endpoint::DumpFile(PathBuf::from("dumps/u:S3cretPW42@h.sql")),
        Endpoint::SqlFiles(PathBuf::from("schema/u:S3cretPW42@h/")),
    ];
    for ep in eps {
        for shown in [format!("{ep:?}"), format!("{ep:#?}"), ep.to_string()] {
            assert!(
                !shown.contains("S3cret") && !shown.contains("PW42"),
                "{shown}"
            );
        }
    }
}

#[test]
fn sql_files_and_dump_files_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, body: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let hand = write("schema.sql", b"CREATE TABLE t (id int);\n");
    let dumped = write(
        "dumped.sql",
        b"--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.t (id int);\n",
    );
    let cluster = write("all.sql", b"--\n-- PostgreSQL database cluster dump\n--\n");
    let custom = write("custom.sql", b"PGDMP\x01\x0e\x00");
    let binary = write("blob.sql", &[0xff, 0xfe, 0x00, 0x01]);
    let not_sql = write("schema.txt", b"CREATE TABLE t (id int);\n");
    let kind = |p: &str| match Endpoint::parse(p).unwrap() {
        Endpoint::SqlFiles(_) => "files",
        Endpoint::DumpFile(_) => "dump",
        _ => "other",
    };
    assert_eq!(kind(&hand), "files");
    assert_eq!(kind(d.to_str().unwrap()), "files");
    for p in [&dumped, &cluster, &custom, &binary, &not_sql] {
        assert_eq!(kind(p), "dump", "{p}");
    }
}
