//! AWS Secrets Manager -> connection parameters. The secret is RDS's JSON shape. The secret's
//! value never reaches a log, an error or `Debug` output: errors name the secret, not its content.

use crate::endpoint::ConnParams;
use anyhow::{anyhow, bail, Result};
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use std::collections::BTreeMap;
use std::time::Duration;

/// Region named by an ARN (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`).
pub fn region_of(secret: &str) -> Option<String> {
    let parts: Vec<&str> = secret.split(':').collect();
    if parts.len() >= 7 && parts[0] == "arn" && parts[2] == "secretsmanager" && !parts[3].is_empty()
    {
        Some(parts[3].to_string())
    } else {
        None
    }
}

/// How long one call to Secrets Manager may take. Without these the SDK waits forever on an
/// endpoint that accepts the connection and never answers (a firewall, a wrong proxy), and a
/// CodeBuild job would hang until its own timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(45);

/// Fetches the secret and turns it into connection parameters. `extra` holds what the user gave
/// besides (sslmode, sslrootcert, and host/port/dbname for secrets that RDS manages itself).
pub async fn resolve(secret_id: &str, extra: &BTreeMap<String, String>) -> Result<ConnParams> {
    // Errors name the secret; an id that holds a password by mistake is shown redacted.
    let shown = crate::endpoint::redact(secret_id);
    let secret = shown.as_str();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build(),
    );
    if let Some(r) = region_of(secret_id) {
        loader = loader.region(aws_config::Region::new(r));
    }
    let conf = loader.load().await;
    if conf.region().is_none() {
        bail!("secret {secret}: no AWS region: give the secret's full ARN, or set AWS_REGION (or a region in your AWS profile)");
    }
    let client = aws_sdk_secretsmanager::Client::new(&conf);
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| describe_error(secret, e))?;
    let text = out
        .secret_string()
        .ok_or_else(|| anyhow!("secret {secret} has no string value (binary secrets are not supported): store the RDS JSON as the secret string"))?;
    from_json(secret, text, extra)
}

/// The AWS error code of a failed call. The SDK parses it from the JSON body; when the body is
/// not the service's JSON (a proxy, an emulator, an IAM layer answering in the query protocol's
/// XML) the code is taken from the `x-amzn-ErrorType` header or an XML `<Code>` element.
fn error_code(parsed: Option<&str>, header: Option<&str>, body: Option<&[u8]>) -> Option<String> {
    if let Some(c) = parsed.filter(|c| !c.is_empty()) {
        return Some(c.to_string());
    }
    // `x-amzn-ErrorType: AccessDeniedException:http://internal.amazon.com/...`
    if let Some(h) = header {
        let c = h.split(':').next().unwrap_or_default().trim();
        if !c.is_empty() {
            return Some(c.to_string());
        }
    }
    let text = std::str::from_utf8(body?).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(text[start..start + len].trim().to_string()).filter(|c| !c.is_empty())
}

/// What a failure means for the user, keyed by the AWS error code.
fn message_for_code(secret: &str, code: &str) -> Option<String> {
    Some(match code {
        "ResourceNotFoundException" => {
            format!("secret {secret} not found: check the ARN or name and the region")
        }
        "AccessDeniedException" | "AccessDenied" => format!(
            "access denied reading secret {secret}: the AWS identity needs secretsmanager:GetSecretValue on it (and kms:Decrypt if it uses a customer key)"
        ),
        "DecryptionFailure" => format!(
            "cannot decrypt secret {secret}: the AWS identity needs kms:Decrypt on the secret's KMS key"
        ),
        "ExpiredTokenException" | "ExpiredToken" | "RequestExpired" => format!(
            "AWS rejected the credentials while reading secret {secret} ({code}: they have expired): refresh them (aws sso login, new session keys) and retry"
        ),
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "InvalidAccessKeyId"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => format!(
            "AWS rejected the credentials while reading secret {secret} ({code}): refresh them (aws sso login, new session keys) and retry"
        ),
        _ => return None,
    })
}

fn describe_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    secret: &str,
    e: SdkError<E, HttpResponse>,
) -> anyhow::Error {
    let raw = e.raw_response();
    let code = error_code(
        e.code(),
        raw.and_then(|r| r.headers().get("x-amzn-errortype")),
        raw.and_then(|r| r.body().bytes()),
    );
    if let Some(m) = code.as_deref().and_then(|c| message_for_code(secret, c)) {
        return anyhow!(m);
    }
    match &e {
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => anyhow!(
            "cannot reach AWS Secrets Manager for secret {secret}: check the network, AWS_ENDPOINT_URL and the region"
        ),
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            // Credential-chain failures land here: no credentials at all, an SSO session that
            // needs a login, a profile that does not exist. The SDK's error type for them is
            // not exported, so they are told apart by the chain's words.
            let why = chain(&e);
            if why.contains("no credentials found in chain") {
                let profile = match std::env::var("AWS_PROFILE") {
                    Ok(p) if !p.is_empty() => format!(" (the profile AWS_PROFILE={p} gave none: check it in ~/.aws/config)"),
                    _ => String::new(),
                };
                anyhow!(
                    "cannot read secret {secret}: no AWS credentials found{profile} (looked at environment variables, the AWS profile, web identity, the ECS/CodeBuild container role and EC2 instance metadata): in CodeBuild give the project a service role; elsewhere set AWS_PROFILE (after aws sso login) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                )
            } else {
                anyhow!(
                    "cannot read secret {secret}: {why}: check the AWS credentials (CodeBuild service role, AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
                )
            }
        }
        SdkError::TimeoutError(_) => anyhow!(
            "timed out reaching AWS Secrets Manager for secret {secret}: check the network and region"
        ),
        _ => {
            let status = raw.map(|r| r.status().as_u16());
            if code.is_none() && status == Some(403) {
                return anyhow!(
                    "access denied reading secret {secret} (HTTP 403): the AWS identity needs secretsmanager:GetSecretValue on it, and valid credentials"
                );
            }
            let msg = e.message().map(str::to_string).unwrap_or_else(|| chain(&e));
            let what = match (code, status) {
                (Some(c), _) => format!("{c}: "),
                (None, Some(s)) => format!("HTTP {s}: "),
                _ => String::new(),
            };
            anyhow!("cannot read secret {secret}: {what}{msg}")
        }
    }
}

/// An error's sources on one line: the SDK's own top-level message is only "dispatch failure".
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        let t = s.to_string();
        if !t.is_empty() && !parts.iter().any(|p: &String| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// Reads RDS's JSON shape: `username`, `password`, and optionally `engine`, `host`, `port`,
/// `dbname`, `dbInstanceIdentifier`.
pub fn from_json(secret: &str, text: &str, extra: &BTreeMap<String, String>) -> Result<ConnParams> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| {
        anyhow!("secret {secret} is not JSON: pgalign expects RDS's shape {{\"username\": ..., \"password\": ..., \"host\": ..., \"port\": ..., \"dbname\": ...}}")
    })?;
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow!("secret {secret} is JSON but not an object: expected RDS's shape with username and password"))?;
    let field = |k: &str| -> Option<String> {
        match obj.get(k)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let missing: Vec<&str> = ["username", "password"]
        .into_iter()
        .filter(|k| field(k).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "secret {secret} lacks {}: an RDS secret holds at least username and password",
            missing.join(" and ")
        );
    }
    if let Some(engine) = field("engine") {
        if !matches!(
            engine.as_str(),
            "postgres" | "postgresql" | "aurora-postgresql"
        ) {
            bail!("secret {secret} is for engine {engine:?}, not PostgreSQL: point pgalign at the PostgreSQL database's secret");
        }
    }
    let mut params = BTreeMap::new();
    params.insert("user".to_string(), field("username").unwrap());
    for (json, kw) in [("host", "host"), ("port", "port"), ("dbname", "dbname")] {
        if let Some(v) = field(json) {
            params.insert(kw.to_string(), v);
        }
    }
    for (k, v) in extra {
        params.insert(k.clone(), v.clone());
    }
    let host = params
        .get("host")
        .cloned()
        .or_else(|| std::env::var("PGHOST").ok());
    if host.is_none() {
        bail!("secret {secret} has no host (RDS-managed secrets hold only username and password): set PGHOST (and PGPORT, PGDATABASE) for it");
    }
    // RDS accepts TLS everywhere; default to it unless the user chose otherwise.
    if !params.contains_key("sslmode")
        && std::env::var("PGSSLMODE").is_err()
        && host.as_deref().is_some_and(|h| {
            h.ends_with(".rds.amazonaws.com") || h.ends_with(".rds.amazonaws.com.cn")
        })
    {
        params.insert("sslmode".into(), "require".into());
    }
    Ok(ConnParams::new(params, field("password")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_shape() {
        let c = from_json(
            "s",
            r#"{"username":"app","password":"pw","engine":"postgres","host":"db.abc.us-east-1.rds.amazonaws.com","port":5432,"dbname":"prod","dbInstanceIdentifier":"db"}"#,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(c.get("port"), Some("5432"));
        assert_eq!(c.get("sslmode"), Some("require"));
        assert_eq!(c.password(), Some("pw"));
        assert!(!format!("{c:?}").contains("pw\""));
    }

    #[test]
    fn bad_secrets_say_what_is_wrong_without_the_value() {
        let e = from_json("s", "hunter2", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not JSON") && !e.contains("hunter2"), "{e}");
        let e = from_json("s", r#"{"username":"a"}"#, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("lacks password"), "{e}");
        let e = from_json(
            "s",
            r#"{"username":"a","password":"hunter2","engine":"mysql","host":"h"}"#,
            &BTreeMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("mysql") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn rds_default_sslmode_yields_to_the_user() {
        let rds =
            r#"{"username":"a","password":"p","host":"x.cluster-abc.eu-west-1.rds.amazonaws.com"}"#;
        let mut extra = BTreeMap::new();
        extra.insert("sslmode".to_string(), "verify-full".to_string());
        let c = from_json("s", rds, &extra).unwrap();
        assert_eq!(c.get("sslmode"), Some("verify-full"));
        let c = from_json(
            "s",
            r#"{"username":"a","password":"p","host":"127.0.0.1"}"#,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(c.get("sslmode"), None, "libpq's default off RDS");
        let c = from_json(
            "s",
            r#"{"username":"a","password":"p","host":"db.abc.cn-north-1.rds.amazonaws.com.cn"}"#,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(c.get("sslmode"), Some("require"));
    }

    #[test]
    fn error_codes_from_json_header_or_xml() {
        assert_eq!(
            error_code(Some("AccessDeniedException"), None, None).as_deref(),
            Some("AccessDeniedException")
        );
        assert_eq!(
            error_code(
                None,
                Some("ExpiredTokenException:http://internal.amazon.com/coral/"),
                None
            )
            .as_deref(),
            Some("ExpiredTokenException")
        );
        let xml = b"<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>no</Message></Error></Errors></ErrorResponse>";
        assert_eq!(
            error_code(None, None, Some(xml)).as_deref(),
            Some("AccessDenied")
        );
        assert_eq!(error_code(None, None, Some(b"{}")), None);
        assert_eq!(error_code(Some(""), Some(""), None), None);
    }

    #[test]
    fn every_known_code_names_the_secret_and_what_to_do() {
        for (code, needle) in [
            ("ResourceNotFoundException", "not found"),
            ("AccessDeniedException", "secretsmanager:GetSecretValue"),
            ("AccessDenied", "secretsmanager:GetSecretValue"),
            ("DecryptionFailure", "kms:Decrypt"),
            ("ExpiredTokenException", "expired"),
            ("UnrecognizedClientException", "rejected the credentials"),
            ("InvalidClientTokenId", "rejected the credentials"),
            ("SignatureDoesNotMatch", "rejected the credentials"),
        ] {
            let m = message_for_code("prod/db", code).unwrap();
            assert!(
                m.contains("secret prod/db") && m.contains(needle),
                "{code}: {m}"
            );
        }
        assert_eq!(message_for_code("s", "InternalServiceError"), None);
    }

    #[test]
    fn regions_from_arns() {
        assert_eq!(
            region_of("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf")
                .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:db").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(region_of("prod/db"), None);
    }
}
