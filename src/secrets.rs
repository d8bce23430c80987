//! AWS Secrets Manager -> connection parameters. The secret is RDS's JSON shape. The secret's
//! value never reaches a log, an error or `Debug` output: errors name the secret, not its content.

use crate::endpoint::ConnParams;
use anyhow::{anyhow, bail, Result};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use std::collections::BTreeMap;

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

/// Fetches the secret and turns it into connection parameters. `extra` holds what the user gave
/// besides (sslmode, sslrootcert, and host/port/dbname for secrets that RDS manages itself).
pub async fn resolve(secret: &str, extra: &BTreeMap<String, String>) -> Result<ConnParams> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = region_of(secret) {
        loader = loader.region(aws_config::Region::new(r));
    }
    let conf = loader.load().await;
    if conf.region().is_none() {
        bail!("secret {secret}: no AWS region: give the secret's full ARN, or set AWS_REGION (or a region in your AWS profile)");
    }
    let client = aws_sdk_secretsmanager::Client::new(&conf);
    let out = client
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| describe_error(secret, e))?;
    let text = out
        .secret_string()
        .ok_or_else(|| anyhow!("secret {secret} has no string value (binary secrets are not supported): store the RDS JSON as the secret string"))?;
    from_json(secret, text, extra)
}

fn describe_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    secret: &str,
    e: SdkError<E>,
) -> anyhow::Error {
    let code = e.code().map(str::to_string);
    match (&e, code.as_deref()) {
        (_, Some("ResourceNotFoundException")) => anyhow!(
            "secret {secret} not found: check the ARN or name and the region"
        ),
        (_, Some("AccessDeniedException")) => anyhow!(
            "access denied reading secret {secret}: the AWS identity needs secretsmanager:GetSecretValue on it (and kms:Decrypt if it uses a customer key)"
        ),
        (_, Some("ExpiredTokenException" | "UnrecognizedClientException" | "InvalidSignatureException" | "InvalidClientTokenId")) => anyhow!(
            "AWS rejected the credentials while reading secret {secret} ({}): refresh them (aws sso login, new session keys) and retry",
            code.unwrap_or_default()
        ),
        (SdkError::DispatchFailure(d), _) => {
            if d.is_io() || d.is_timeout() {
                anyhow!("cannot reach AWS Secrets Manager for secret {secret}: check the network, AWS_ENDPOINT_URL and the region")
            } else {
                let src = std::error::Error::source(&e)
                    .map(|s| format!("{s}"))
                    .unwrap_or_default();
                anyhow!("cannot read secret {secret}: {src}: check the AWS credentials (profile, role, environment)")
            }
        }
        (SdkError::TimeoutError(_), _) => anyhow!(
            "timed out reaching AWS Secrets Manager for secret {secret}: check the network and region"
        ),
        _ => {
            let msg = e.message().map(str::to_string).unwrap_or_else(|| {
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown error".into())
            });
            anyhow!("cannot read secret {secret}: {}{msg}", code.map(|c| format!("{c}: ")).unwrap_or_default())
        }
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
        bail!("secret {secret} has no host (RDS-managed secrets hold only username and password): give the host with --host or PGHOST");
    }
    // RDS accepts TLS everywhere; default to it unless the user chose otherwise.
    if !params.contains_key("sslmode")
        && std::env::var("PGSSLMODE").is_err()
        && host
            .as_deref()
            .is_some_and(|h| h.ends_with(".rds.amazonaws.com"))
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
    fn regions_from_arns() {
        assert_eq!(
            region_of("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf")
                .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of("prod/db"), None);
    }
}
