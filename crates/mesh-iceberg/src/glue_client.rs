//! The AWS Glue Data Catalog API as meshkit calls it: eight operations (GetDatabase,
//! GetDatabases, CreateDatabase, GetTable, GetTables, CreateTable, UpdateTable, DeleteTable),
//! each one SigV4-signed JSON request (`AWSGlue.<Operation>`, JSON 1.1) over the HTTPS client
//! object_store already uses.
//!
//! Why not `aws-sdk-glue`: it models all of Glue's ~250 operations and was the largest crate of
//! a cold build (264 of 2,076 unit-seconds, a quarter of the AWS share), for eight calls whose
//! requests and answers are a few JSON fields. Requests and answers stay `serde_json` values:
//! the catalog reads the fields it needs and copies the rest of a table through unchanged.
//! Signing is the SDK's own `aws-sigv4`, credentials its provider chain (`aws-config`).
//!
//! Errors are classified as the SDK classified them (the service's error code, the HTTP
//! status, or a transport failure); throttling, 5xx answers and transport failures are tried
//! again, three attempts in all with exponential backoff, as the SDK's standard retry mode.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use serde_json::Value;

/// What went wrong with one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Glue answered with an error: its code (`EntityNotFoundException`), message and status.
    Service { code: String, message: String, status: u16 },
    /// No answer: connection, TLS or timeout.
    Transport(String),
    /// The request could not be signed (no credentials, bad endpoint).
    Request(String),
}

impl CallError {
    /// Whether Glue answered with error `code`.
    pub fn is(&self, code: &str) -> bool {
        matches!(self, CallError::Service { code: c, .. } if c == code)
    }

    fn retryable(&self) -> bool {
        match self {
            CallError::Transport(_) => true,
            CallError::Service { code, status, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded"
                    )
            }
            CallError::Request(_) => false,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Service { code, message, status } => write!(f, "{code} (HTTP {status}): {message}"),
            CallError::Transport(m) => write!(f, "no answer from Glue: {m}"),
            CallError::Request(m) => write!(f, "cannot send the request: {m}"),
        }
    }
}

impl std::error::Error for CallError {}

/// A Glue client for one region and endpoint, with one identity.
#[derive(Clone)]
pub struct GlueClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: String,
    host: String,
    region: String,
    credentials: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl fmt::Debug for GlueClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlueClient")
            .field("endpoint", &self.inner.endpoint)
            .field("region", &self.inner.region)
            .finish()
    }
}

const ATTEMPTS: u32 = 3;

impl GlueClient {
    /// A client of `region`'s Glue (`https://glue.{region}.amazonaws.com`, or `endpoint`: a
    /// local server such as moto), signing with what `credentials` provides.
    pub fn new(region: &str, endpoint: Option<&str>, credentials: SharedCredentialsProvider) -> GlueClient {
        let endpoint = endpoint
            .map(|e| e.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("https://glue.{region}.amazonaws.com"));
        let host = endpoint
            .split_once("://")
            .map_or(endpoint.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        GlueClient {
            inner: Arc::new(Inner {
                http: reqwest::Client::new(),
                endpoint,
                host,
                region: region.to_string(),
                credentials,
                cached: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Calls `operation` (`GetTable`) with `body`; the answer's JSON.
    pub async fn call(&self, operation: &str, body: &Value) -> Result<Value, CallError> {
        let body = serde_json::to_vec(body).map_err(|e| CallError::Request(e.to_string()))?;
        let mut attempt = 1;
        loop {
            match self.once(operation, &body).await {
                Err(e) if e.retryable() && attempt < ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn once(&self, operation: &str, body: &[u8]) -> Result<Value, CallError> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let i = &self.inner;
        let credentials = self.credentials().await?;
        let identity = credentials.into();
        let target = format!("AWSGlue.{operation}");
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
            ("host", i.host.as_str()),
        ];
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&i.region)
            .name("glue")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| CallError::Request(e.to_string()))?
            .into();
        let url = format!("{}/", i.endpoint);
        let signable = SignableRequest::new("POST", &url, headers.iter().copied(), SignableBody::Bytes(body))
            .map_err(|e| CallError::Request(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| CallError::Request(e.to_string()))?
            .into_parts();
        let mut request = http::Request::builder().method("POST").uri(&url);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let mut request = request
            .body(body.to_vec())
            .map_err(|e| CallError::Request(e.to_string()))?;
        instructions.apply_to_request_http1x(&mut request);
        let request = reqwest::Request::try_from(request).map_err(|e| CallError::Request(e.to_string()))?;
        let response = i
            .http
            .execute(request)
            .await
            .map_err(|e| CallError::Transport(crate::error::ErrorChain(&e).to_string()))?;
        let status = response.status().as_u16();
        let header_code = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CallError::Transport(crate::error::ErrorChain(&e).to_string()))?;
        let json: Value = if bytes.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&bytes).map_err(|e| CallError::Service {
                code: "InvalidResponse".into(),
                message: format!("{e}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)])),
                status,
            })?
        };
        if (200..300).contains(&status) {
            return Ok(json);
        }
        // `__type` is `EntityNotFoundException` or `com.amazonaws.glue#EntityNotFoundException`;
        // the header may add `:http://…` after the code.
        let code = json["__type"]
            .as_str()
            .map(str::to_string)
            .or(header_code)
            .map(|c| {
                let c = c.rsplit('#').next().unwrap_or(&c).to_string();
                c.split(':').next().unwrap_or(&c).to_string()
            })
            .unwrap_or_else(|| format!("HTTP{status}"));
        let message = json["message"]
            .as_str()
            .or(json["Message"].as_str())
            .unwrap_or_default()
            .to_string();
        Err(CallError::Service { code, message, status })
    }

    /// The provider's credentials, reused until five minutes before they expire.
    async fn credentials(&self) -> Result<Credentials, CallError> {
        let mut cached = self.inner.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c
                .expiry()
                .is_none_or(|t| t > SystemTime::now() + Duration::from_secs(300));
            if fresh {
                return Ok(c.clone());
            }
        }
        let c = self
            .inner
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| CallError::Request(format!("no AWS credentials: {}", crate::error::ErrorChain(&e))))?;
        *cached = Some(c.clone());
        Ok(c)
    }
}

/// The wait before attempt `n + 1`: 100 ms, 200 ms, … with up to half of it again as jitter
/// (from the clock's nanoseconds: enough to keep concurrent writers apart).
fn backoff(n: u32) -> Duration {
    let base = 100u64 << (n - 1).min(6);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    Duration::from_millis(base + nanos % (base / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_as_the_sdk_did() {
        let e = |code: &str, status| CallError::Service {
            code: code.into(),
            message: String::new(),
            status,
        };
        assert!(e("ThrottlingException", 400).retryable());
        assert!(e("InternalServiceException", 500).retryable());
        assert!(!e("EntityNotFoundException", 400).retryable());
        assert!(!e("ConcurrentModificationException", 400).retryable());
        assert!(CallError::Transport("reset".into()).retryable());
        assert!(!CallError::Request("no credentials".into()).retryable());
        assert!(e("EntityNotFoundException", 400).is("EntityNotFoundException"));
    }

    #[test]
    fn endpoints_and_hosts() {
        let creds = SharedCredentialsProvider::new(Credentials::new("a", "b", None, None, "t"));
        let c = GlueClient::new("eu-west-1", None, creds.clone());
        assert_eq!(c.inner.endpoint, "https://glue.eu-west-1.amazonaws.com");
        assert_eq!(c.inner.host, "glue.eu-west-1.amazonaws.com");
        let c = GlueClient::new("eu-west-1", Some("http://127.0.0.1:5000/"), creds);
        assert_eq!(c.inner.endpoint, "http://127.0.0.1:5000");
        assert_eq!(c.inner.host, "127.0.0.1:5000");
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert!(backoff(1) >= Duration::from_millis(100) && backoff(1) <= Duration::from_millis(151));
        assert!(backoff(2) >= Duration::from_millis(200) && backoff(2) <= Duration::from_millis(301));
    }
}
