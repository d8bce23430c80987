//! What a `--source` / `--target` is: a PostgreSQL URL or libpq keyword string, a dump file, SQL
//! files (a directory of `.sql` files, or one `.sql` file pg_dump did not write), or (through
//! `secrets`) an AWS Secrets Manager secret. Passwords live here and nowhere else; they
//! never appear in `Display` or `Debug` output.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// libpq connection keywords (host, port, user, dbname, sslmode, ...) without the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnParams {
    pub params: BTreeMap<String, String>,
    password: Option<String>,
}

impl ConnParams {
    pub fn new(params: BTreeMap<String, String>, password: Option<String>) -> Self {
        ConnParams { params, password }
    }
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }
    pub fn set_password(&mut self, p: Option<String>) {
        self.password = p;
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(|s| s.as_str())
    }
    /// A libpq keyword/value string with no password in it: safe for a child's argv.
    pub fn conninfo(&self) -> String {
        self.params
            .iter()
            .map(|(k, v)| format!("{k}={}", quote_conninfo_value(v)))
            .collect::<Vec<_>>()
            .join(" ")
    }
    /// Values as libpq would resolve them: explicit keywords, else PG* environment variables.
    pub fn resolved(&self, key: &str) -> Option<String> {
        if let Some(v) = self.get(key) {
            return Some(v.to_string());
        }
        let env = match key {
            "host" => "PGHOST",
            "port" => "PGPORT",
            "user" => "PGUSER",
            "dbname" => "PGDATABASE",
            "sslmode" => "PGSSLMODE",
            "sslrootcert" => "PGSSLROOTCERT",
            "connect_timeout" => "PGCONNECT_TIMEOUT",
            "application_name" => "PGAPPNAME",
            _ => return None,
        };
        std::env::var(env).ok().filter(|v| !v.is_empty())
    }
    /// The password as libpq would find it: given, else PGPASSWORD.
    pub fn resolved_password(&self) -> Option<String> {
        self.password
            .clone()
            .or_else(|| std::env::var("PGPASSWORD").ok().filter(|v| !v.is_empty()))
    }
}

impl fmt::Display for ConnParams {
    /// `user@host:port/dbname`, as much as is known; never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self
            .resolved("host")
            .unwrap_or_else(|| "localhost".to_string());
        let port = self.resolved("port").unwrap_or_else(|| "5432".into());
        let user = self.resolved("user");
        let db = self.resolved("dbname").or_else(|| user.clone());
        if let Some(u) = &user {
            write!(f, "{u}@")?;
        }
        write!(f, "{host}:{port}/{}", db.unwrap_or_default())
    }
}

impl fmt::Debug for ConnParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnParams")
            .field("params", &self.params)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn quote_conninfo_value(v: &str) -> String {
    if !v.is_empty() && !v.contains([' ', '\'', '\\', '=']) {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// Where a schema comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A live database.
    Database(ConnParams),
    /// A file written by `pg_dump --schema-only`, plain or custom format.
    DumpFile(PathBuf),
    /// An AWS Secrets Manager secret (ARN or name) holding RDS-style JSON.
    Secret(String),
    /// Schema as code: a directory of `.sql` files, or one `.sql` file that is not pg_dump's
    /// output, loaded into a scratch database (`crate::files`) and dumped from there.
    SqlFiles(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Database(c) => write!(f, "{c}"),
            Endpoint::DumpFile(p) => write!(f, "dump file {}", redact(&p.display().to_string())),
            Endpoint::Secret(s) => write!(f, "secret {}", redact(s)),
            Endpoint::SqlFiles(p) => write!(f, "SQL files {}", redact(&p.display().to_string())),
        }
    }
}

/// By hand, not derived: a path or a secret id given by mistake may hold a password.
impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Database(c) => f.debug_tuple("Database").field(c).finish(),
            Endpoint::DumpFile(p) => f
                .debug_tuple("DumpFile")
                .field(&redact(&p.display().to_string()))
                .finish(),
            Endpoint::Secret(s) => f.debug_tuple("Secret").field(&redact(s)).finish(),
            Endpoint::SqlFiles(p) => f
                .debug_tuple("SqlFiles")
                .field(&redact(&p.display().to_string()))
                .finish(),
        }
    }
}

impl Endpoint {
    /// Reads `--source` / `--target`, else the environment variables named for that side.
    pub fn resolve(arg: Option<&str>, side: Side) -> Result<Endpoint> {
        if let Some(a) = arg {
            return Endpoint::parse(a).with_context(|| format!("reading --{}", side.name()));
        }
        let (url_var, secret_var, dir_var) = match side {
            Side::Source => (
                "SOURCE_DATABASE_URL",
                "SOURCE_DB_SECRETS",
                "SOURCE_SCHEMA_DIR",
            ),
            Side::Target => (
                "TARGET_DATABASE_URL",
                "TARGET_DB_SECRETS",
                "TARGET_SCHEMA_DIR",
            ),
        };
        if let Ok(v) = std::env::var(url_var) {
            if !v.is_empty() {
                return Endpoint::parse(&v).with_context(|| format!("reading {url_var}"));
            }
        }
        if let Ok(v) = std::env::var(secret_var) {
            if !v.is_empty() {
                return secret_endpoint(&v).with_context(|| format!("reading {secret_var}"));
            }
        }
        if let Some(v) = std::env::var_os(dir_var).filter(|v| !v.is_empty()) {
            let p = PathBuf::from(v);
            if !p.is_dir() {
                bail!(
                    "{dir_var}: {} is not a directory (it names a folder of .sql files)",
                    redact(&p.display().to_string())
                );
            }
            return Ok(Endpoint::SqlFiles(p));
        }
        bail!(
            "no {} given: pass --{} (a postgres:// URL, a dump file, SQL files or a secret ARN) or set {url_var}, {secret_var} or {dir_var}",
            side.name(),
            side.name()
        )
    }

    /// Errors never repeat the text itself when it could hold a password: a URL with a typo,
    /// a JDBC URL, a keyword string with a stray word. A missing file's path is repeated, redacted.
    pub fn parse(s: &str) -> Result<Endpoint> {
        let t = s.trim();
        if t.starts_with("postgres://") || t.starts_with("postgresql://") {
            return Ok(Endpoint::Database(parse_url(t)?));
        }
        if t.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("jdbc:")) {
            bail!("a JDBC URL (jdbc:postgresql://...) is not a libpq connection string: write postgres://user@host:port/db, with the password in PGPASSWORD or URL-encoded in the URL");
        }
        // Every AWS partition: aws, aws-cn, aws-us-gov, ...
        let mut arn = t.splitn(4, ':');
        if arn.next() == Some("arn")
            && arn.next().is_some_and(|p| p.starts_with("aws"))
            && arn.next() == Some("secretsmanager")
        {
            return secret_endpoint(t);
        }
        if let Some(name) = t.strip_prefix("secret:") {
            if name.is_empty() {
                bail!("`secret:` needs a secret name after it, e.g. secret:prod/app-db");
            }
            return secret_endpoint(name);
        }
        let path = Path::new(t);
        if path.is_dir() {
            return Ok(Endpoint::SqlFiles(path.to_path_buf()));
        }
        if path.is_file() {
            if t.ends_with(".sql") && !written_by_pg_dump(path) {
                return Ok(Endpoint::SqlFiles(path.to_path_buf()));
            }
            return Ok(Endpoint::DumpFile(path.to_path_buf()));
        }
        if let Some(scheme) = url_scheme(t) {
            if scheme == "postgres" || scheme == "postgresql" {
                bail!("not a postgres:// URL: write two slashes after {scheme}: (postgres://user@host:port/db)");
            }
            if scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql")
            {
                bail!("not a postgres:// URL: write the scheme {scheme} in lowercase: postgres://user@host:port/db");
            }
            bail!("not a postgres:// URL: the scheme {scheme} is not postgres or postgresql: write postgres://user@host:port/db (or give an existing dump file)");
        }
        if t.contains('=') {
            return Ok(Endpoint::Database(parse_keywords(t)?));
        }
        if t.rfind('@').is_some_and(|at| t[..at].contains(':')) {
            bail!("not a postgres:// URL: this looks like a URL's user, password and host without postgres:// before them: write postgres://user@host:port/db, with the password in PGPASSWORD or URL-encoded");
        }
        let shown = redact(t);
        if t.ends_with(".sql") || t.ends_with(".dump") || t.contains('/') {
            bail!("{shown}: no such file (an endpoint is a postgres:// URL, a libpq keyword string, a dump file or a secret ARN)");
        }
        bail!("{shown}: not a postgres:// URL, a libpq keyword string (host=... dbname=...), an existing dump file or a secret ARN")
    }
}

/// Whether a `.sql` file is pg_dump's (or pg_dumpall's, or pg_restore's) output, read from its
/// first 8 KiB: its header comment, or a custom archive's magic. A file with a NUL byte there is
/// no SQL anyone wrote either: it stays a dump file, which is refused with the dump reader's
/// own words. A file that cannot be read stays a dump file too, and its reader names the error.
fn written_by_pg_dump(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(8192);
    let read = std::fs::File::open(path).and_then(|f| f.take(8192).read_to_end(&mut head));
    if read.is_err() || head.starts_with(b"PGDMP") || head.contains(&0) {
        return true;
    }
    String::from_utf8_lossy(&head).lines().any(|l| {
        l.starts_with("-- PostgreSQL database dump")
            || l.starts_with("-- PostgreSQL database cluster dump")
    })
}

/// A secret's ARN or name. AWS allows only letters, digits and `/_+=.@-` in names (and `:` in
/// ARNs): anything else is likely the secret's value pasted by mistake, and is not repeated.
fn secret_endpoint(id: &str) -> Result<Endpoint> {
    if !is_secret_id(id) {
        bail!("not a secret ARN or name (those hold only letters, digits and / _ + = . @ -, and : in an ARN): give the secret's ARN or name, not its value");
    }
    Ok(Endpoint::Secret(id.to_string()))
}

/// Whether `id` can be a secret's name or ARN (the characters AWS allows).
fn is_secret_id(id: &str) -> bool {
    let arn = id.starts_with("arn:");
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c) || (arn && c == ':'))
}

/// `scheme` of text shaped like `scheme:/...` or `scheme://...` (a URL, maybe with a typo).
/// One letter before `:/` is a Windows drive, not a scheme.
fn url_scheme(t: &str) -> Option<&str> {
    let colon = t.find(":/")?;
    let scheme = &t[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (scheme.len() > 1
        && first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)))
    .then_some(scheme)
}

/// Text with the passwords it may hold replaced by `***`: a URL's userinfo after `:`
/// (`scheme://user:***@host`, also without the scheme: `user:***@host`), a URL's `:password`
/// where a port belongs when no `@` follows, and the value of every `...password=` key (libpq
/// keywords, quoted or not, URL query parameters, `PGPASSWORD=`) and JSON `"password": "..."`.
/// For every error that may show endpoint text, and once more over every error in `main`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let ws = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push_str(&redact_userinfo(&rest[..end]));
        rest = &rest[end..];
    }
    redact_password_values(&out)
}

/// One whitespace-free token: the userinfo's password, up to the token's last `@`.
fn redact_userinfo(tok: &str) -> String {
    // A secret's ARN may hold an @ after its colons (`...:secret:ops@db`); it holds no password.
    if tok.starts_with("arn:") && is_secret_id(tok.trim_end_matches([',', ';', ')'])) {
        return tok.to_string();
    }
    // After `scheme:/` or `scheme://` when there is one, else the whole token.
    let start = tok
        .find(":/")
        .filter(|&c| {
            let before = &tok[..c];
            let scheme_start = before
                .rfind(|ch: char| !(ch.is_ascii_alphanumeric() || "+.-".contains(ch)))
                .map_or(0, |i| i + 1);
            c - scheme_start > 1
        })
        .map(|c| c + 1 + tok[c + 1..].len() - tok[c + 1..].trim_start_matches('/').len());
    let body_start = start.unwrap_or(0);
    let body = &tok[body_start..];
    if let Some(at) = body.rfind('@') {
        if let Some(colon) = body[..at].find(':') {
            return format!(
                "{}{}:***{}",
                &tok[..body_start],
                &body[..colon],
                &body[at..]
            );
        }
        return tok.to_string();
    }
    // No `@`: `scheme://user:password/db` puts the password where the port belongs.
    if start.is_some() && !body.starts_with('[') {
        let auth_end = body.find(['/', '?', '#']).unwrap_or(body.len());
        if let Some(colon) = body[..auth_end].find(':') {
            let port = &body[colon + 1..auth_end];
            if !port.is_empty() && !port.chars().all(|c| c.is_ascii_digit()) {
                return format!(
                    "{}{}:***{}",
                    &tok[..body_start],
                    &body[..colon],
                    &body[auth_end..]
                );
            }
        }
    }
    tok.to_string()
}

/// `...password=VALUE` (VALUE quoted with ' or ", or up to whitespace, and in a URL query also
/// up to `&`) and `"...password": "VALUE"`, the key in any case.
fn redact_password_values(text: &str) -> String {
    const KEY: &str = "password";
    let lower = text.to_ascii_lowercase();
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(KEY) {
        let key_start = from + found;
        let mut i = key_start + KEY.len();
        from = i;
        let json = i < b.len() && b[i] == b'"';
        if json {
            i += 1;
        }
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let sep = if json { b':' } else { b'=' };
        if i >= b.len() || b[i] != sep {
            continue;
        }
        i += 1;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let (vs, ve) = if i < b.len() && (b[i] == b'\'' || b[i] == b'"') {
            let q = b[i];
            let mut j = i + 1;
            while j < b.len() && b[j] != q {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            (i + 1, j.min(b.len()))
        } else if json {
            continue;
        } else {
            // In a URL query (`?password=` / `&password=`) the value ends at the next `&`.
            let key_word_start = lower[..key_start]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |p| p + 1);
            let in_query = key_word_start > 0 && matches!(b[key_word_start - 1], b'?' | b'&');
            let mut j = i;
            while j < b.len() && !b[j].is_ascii_whitespace() && !(in_query && b[j] == b'&') {
                j += 1;
            }
            (i, j)
        };
        if ve > vs {
            out.push_str(&text[copied..vs]);
            out.push_str("***");
            copied = ve;
            from = ve;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

fn percent_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                None => bail!("bad percent-encoding in the URL: a % in a user name or password is written %25"),
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).context("the URL decodes to invalid UTF-8")
}

/// What to do when a URL's parts do not fit: most often a password with a character that has a
/// meaning in URLs.
const URL_PASSWORD_HINT: &str = "a / ? # @ or % in a password must be URL-encoded (%2F %3F %23 %40 %25), or the password put in PGPASSWORD";

/// libpq's connection keywords (PostgreSQL 18): the keys a URL query or a keyword string may
/// use. Anything else would reach pg_dump's command line, and its error would repeat it.
const LIBPQ_KEYWORDS: &[&str] = &[
    "application_name",
    "channel_binding",
    "client_encoding",
    "connect_timeout",
    "dbname",
    "fallback_application_name",
    "gssdelegation",
    "gssencmode",
    "gsslib",
    "host",
    "hostaddr",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "krbsrvname",
    "load_balance_hosts",
    "max_protocol_version",
    "min_protocol_version",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_issuer",
    "oauth_scope",
    "options",
    "passfile",
    "password",
    "port",
    "replication",
    "require_auth",
    "requirepeer",
    "scram_client_key",
    "scram_server_key",
    "service",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "sslcert",
    "sslcertmode",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslkey",
    "sslkeylogfile",
    "sslmode",
    "sslnegotiation",
    "sslpassword",
    "sslrootcert",
    "sslsni",
    "target_session_attrs",
    "tcp_user_timeout",
    "user",
];

/// Why a key is refused. The key itself is never repeated: it may be part of a password (an
/// unquoted `password=a b=c`); `did_you_mean` names the keyword it is close to, if any.
fn unknown_keyword(what: &str) -> String {
    format!("{what} is not a libpq keyword (host, port, dbname, user, sslmode, ...: https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS)")
}

fn did_you_mean(key: &str) -> String {
    LIBPQ_KEYWORDS
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 2 && key.len() > 2)
        .min()
        .map(|(_, k)| format!(" (did you mean {k}?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parses `postgres://user:password@host:port/db?key=value`. Errors never repeat a part of the
/// URL: when the parts do not fit, one of them is likely a piece of a password.
pub fn parse_url(url: &str) -> Result<ConnParams> {
    let rest = url.split_once("://").map(|x| x.1).context("not a URL")?;
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (main, None),
    };
    let mut params = BTreeMap::new();
    let mut password = None;
    let mut has_userinfo = false;
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            has_userinfo = true;
            match userinfo.split_once(':') {
                Some((u, p)) => {
                    if !u.is_empty() {
                        params.insert("user".into(), percent_decode(u)?);
                    }
                    password = Some(percent_decode(p)?);
                }
                None if !userinfo.is_empty() => {
                    params.insert("user".into(), percent_decode(userinfo)?);
                }
                None => {}
            }
            hp
        }
        None => authority,
    };
    if !hostport.is_empty() {
        let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
            let (h, after) = stripped
                .split_once(']')
                .context("unclosed [ in the URL's host")?;
            (
                h.to_string(),
                after.strip_prefix(':').map(|p| p.to_string()),
            )
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.to_string())),
                None => (hostport.to_string(), None),
            }
        };
        if !host.is_empty() {
            params.insert("host".into(), percent_decode(&host)?);
        }
        if let Some(p) = port.filter(|p| !p.is_empty()) {
            if p.parse::<u16>().is_err() {
                if has_userinfo {
                    bail!("the URL's port (after host:) is not a number");
                }
                bail!("the URL's port (after the first : behind //) is not a number: if that is user:password, the URL lacks @host after it, or {URL_PASSWORD_HINT}");
            }
            params.insert("port".into(), p);
        }
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        // `postgres://u:pa/ss@host/db` splits the password at its `/`.
        if db.contains('@') {
            bail!("the URL's database name (after the /) holds an @: {URL_PASSWORD_HINT} (and an @ in a database name written %40)");
        }
        params.insert("dbname".into(), percent_decode(db)?);
    }
    for (n, pair) in query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let nth = n + 1;
        let Some((k, v)) = pair.split_once('=') else {
            bail!("the URL's query parameter {nth} (after the ?) has no \"=\": write key=value, e.g. ?sslmode=require; {URL_PASSWORD_HINT}");
        };
        let k = percent_decode(k)?;
        let v = percent_decode(v)?;
        if !LIBPQ_KEYWORDS.contains(&k.as_str()) {
            let what = unknown_keyword(&format!("the URL's query parameter {nth} (after the ?)"));
            match did_you_mean(&k) {
                hint if hint.is_empty() => bail!("{what}; {URL_PASSWORD_HINT}"),
                hint => bail!("{what}{hint}"),
            }
        }
        if k == "password" {
            password = Some(v);
        } else {
            params.insert(k, v);
        }
    }
    Ok(ConnParams::new(params, password))
}

/// Parses a libpq keyword/value string: `host=db port=5432 dbname='my db'`.
pub fn parse_keywords(s: &str) -> Result<ConnParams> {
    let mut params = BTreeMap::new();
    let mut password = None;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut nth = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let ks = i;
        nth += 1;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[ks..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        // Never repeat a word that is not a keyword: it may be (part of) a password.
        if i >= chars.len() || chars[i] != '=' {
            bail!("connection string: word {nth} has no \"=\": write keyword=value pairs, with a value that holds spaces in single quotes (or the password in PGPASSWORD)");
        }
        if !LIBPQ_KEYWORDS.contains(&key.as_str()) {
            bail!(
                "connection string: {}{}; a value that holds spaces goes in single quotes",
                unknown_keyword(&format!("word {nth} (before its =)")),
                did_you_mean(&key)
            );
        }
        i += 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut val = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            loop {
                if i >= chars.len() {
                    bail!("connection string: the quoted value of {key} has no closing ': write \\' for a quote inside it");
                }
                match chars[i] {
                    '\\' if i + 1 < chars.len() => {
                        val.push(chars[i + 1]);
                        i += 2;
                    }
                    '\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        val.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                val.push(chars[i]);
                i += 1;
            }
        }
        if key == "password" {
            password = Some(val);
        } else {
            params.insert(key, val);
        }
    }
    Ok(ConnParams::new(params, password))
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
