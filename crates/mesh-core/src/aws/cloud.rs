//! The AWS side of the runtime (`ENV=dev|int|prod`): the Glue Data Catalog as the Iceberg
//! catalog and S3 for every file, configured only by the standard AWS mechanisms so jobs never
//! see an environment.
//!
//! | what | where it comes from |
//! |---|---|
//! | buckets, databases, table locations | the naming engine: `f01-raw-dev`, `f01_curated`, `s3://f01-curated-dev/pj01/iceberg/daily_sales` |
//! | region | `domain.json` `aws_region` (override: `aws_region` in `mesh.toml` or `F01_AWS_REGION`) |
//! | credentials | the AWS SDK default chain (environment, `~/.aws` profiles and SSO, web identity, container and instance roles), shared by Glue and S3 |
//! | Glue endpoint | AWS, or `AWS_ENDPOINT_URL_GLUE` / `AWS_ENDPOINT_URL` (read by the SDK), or `glue_endpoint` (`F01_GLUE_ENDPOINT`) |
//! | S3 endpoint | AWS, or `s3_endpoint` (`F01_S3_ENDPOINT`), else `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`; an `http://` endpoint is allowed, requests are path style |
//!
//! An offline run against a local moto server (S3 and Glue on one port) needs only:
//! `ENV=dev AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test`.
//!
//! The Glue databases (`f01_raw`, `f01_refined`, `f01_curated`) are created by the generated
//! Terraform in AWS; the runtime looks them up and creates only missing ones (a fresh moto
//! server), so a role without `glue:CreateDatabase` works against provisioned accounts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use object_store::aws::AwsCredential;
use object_store::CredentialProvider;

use mesh_iceberg::{ObjectStores, S3Options};

use crate::config::Config;

/// The S3 endpoint override: the configuration, then the standard AWS variables.
pub fn s3_endpoint(config: &Config, vars: &BTreeMap<String, String>) -> Option<String> {
    config
        .s3_endpoint
        .value
        .clone()
        .or_else(|| vars.get("AWS_ENDPOINT_URL_S3").cloned())
        .or_else(|| vars.get("AWS_ENDPOINT_URL").cloned())
        .filter(|e| !e.is_empty())
}

/// The AWS SDK's configuration loader: the standard provider chain and endpoint variables, with
/// the SDKs' HTTPS client on rustls with ring (the crypto object_store's S3 client already
/// uses), so the build needs no second crypto library. Every SDK client starts here.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http)
}

/// The AWS SDK configuration: the default provider chain with the domain's region.
pub async fn sdk_config(config: &Config) -> aws_config::SdkConfig {
    sdk_loader()
        .region(Region::new(config.aws_region.value.clone()))
        .load()
        .await
}

/// The Glue endpoint override: the configuration, then the standard AWS variables (as the SDK
/// reads them: the service's own first).
pub fn glue_endpoint(config: &Config, vars: &BTreeMap<String, String>) -> Option<String> {
    config
        .glue_endpoint
        .value
        .clone()
        .or_else(|| vars.get("AWS_ENDPOINT_URL_GLUE").cloned())
        .or_else(|| vars.get("AWS_ENDPOINT_URL").cloned())
        .filter(|e| !e.is_empty())
}

/// A Glue client with the SDK configuration's credentials and region, at the endpoint override
/// if any.
pub fn glue_client(
    sdk: &aws_config::SdkConfig,
    config: &Config,
    vars: &BTreeMap<String, String>,
) -> mesh_iceberg::GlueClient {
    let credentials = sdk
        .credentials_provider()
        .unwrap_or_else(|| SharedCredentialsProvider::new(NoCredentials));
    mesh_iceberg::GlueClient::new(
        &config.aws_region.value,
        glue_endpoint(config, vars).as_deref(),
        credentials,
    )
}

/// The provider of a configuration without a credential chain: every call fails, saying so.
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no AWS credential chain is configured: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            ),
        ))
    }
}

/// Object stores whose S3 clients use the SDK's credential chain, so S3 and Glue always act
/// as the same identity.
pub fn object_stores(sdk: &aws_config::SdkConfig, config: &Config, vars: &BTreeMap<String, String>) -> ObjectStores {
    let options = S3Options {
        region: Some(config.aws_region.value.clone()),
        endpoint: s3_endpoint(config, vars),
        virtual_hosted_style: false,
    };
    let credentials = sdk.credentials_provider().map(|p| {
        Arc::new(SdkCredentials {
            provider: p,
            cached: tokio::sync::Mutex::new(None),
        }) as object_store::aws::AwsCredentialProvider
    });
    ObjectStores::new(options, credentials)
}

/// The object stores of the configured environment without opening a catalog (uploads).
pub async fn stores_for(config: &Config, vars: &BTreeMap<String, String>) -> ObjectStores {
    match config.env.value {
        mesh_domain::Env::Local => ObjectStores::default(),
        _ => object_stores(&sdk_config(config).await, config, vars),
    }
}

/// Bridges the AWS SDK's credential chain into `object_store`, caching credentials until
/// shortly before they expire (the SDK clients cache the same way; a chain such as SSO or
/// instance metadata must not be asked once per request).
#[derive(Debug)]
struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

/// Refresh this long before expiry, so a request signed now is not rejected mid-flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

#[async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((c, expiry)) = cached.as_ref() {
            if expiry.is_none_or(|e| e > SystemTime::now() + REFRESH_MARGIN) {
                return Ok(c.clone());
            }
        }
        let creds = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "no AWS credentials: {}. Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role",
                    mesh_iceberg::ErrorChain(&e)
                )
                .into(),
            })?;
        let c = Arc::new(AwsCredential {
            key_id: creds.access_key_id().to_string(),
            secret_key: creds.secret_access_key().to_string(),
            token: creds.session_token().map(str::to_string),
        });
        *cached = Some((c.clone(), creds.expiry()));
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Inputs;
    use mesh_domain::DomainAbbr;

    fn config(vars: &[(&str, &str)]) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let abbr = DomainAbbr::parse("f01").unwrap();
        Config::resolve(&Inputs {
            domain_root: dir.path(),
            abbr: &abbr,
            region: "eu-west-1",
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            flags: BTreeMap::new(),
        })
        .unwrap()
    }

    #[test]
    fn glue_endpoint_precedence() {
        let vars = |v: &[(&str, &str)]| -> BTreeMap<String, String> {
            v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let c = config(&[]);
        assert_eq!(glue_endpoint(&c, &vars(&[])), None);
        let both = vars(&[("AWS_ENDPOINT_URL", "http://a"), ("AWS_ENDPOINT_URL_GLUE", "http://g")]);
        assert_eq!(glue_endpoint(&c, &both).as_deref(), Some("http://g"));
        assert_eq!(
            glue_endpoint(&c, &vars(&[("AWS_ENDPOINT_URL", "http://a")])).as_deref(),
            Some("http://a")
        );
        let c = config(&[("F01_GLUE_ENDPOINT", "http://mine")]);
        assert_eq!(glue_endpoint(&c, &both).as_deref(), Some("http://mine"));
    }

    #[test]
    fn s3_endpoint_precedence() {
        let vars = |v: &[(&str, &str)]| -> BTreeMap<String, String> {
            v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let c = config(&[]);
        assert_eq!(s3_endpoint(&c, &vars(&[])), None);
        assert_eq!(
            s3_endpoint(&c, &vars(&[("AWS_ENDPOINT_URL", "http://a")])).as_deref(),
            Some("http://a")
        );
        assert_eq!(
            s3_endpoint(
                &c,
                &vars(&[("AWS_ENDPOINT_URL", "http://a"), ("AWS_ENDPOINT_URL_S3", "http://s3")])
            )
            .as_deref(),
            Some("http://s3")
        );
        let c = config(&[("F01_S3_ENDPOINT", "http://mine")]);
        assert_eq!(
            s3_endpoint(&c, &vars(&[("AWS_ENDPOINT_URL_S3", "http://s3")])).as_deref(),
            Some("http://mine")
        );
    }

    #[tokio::test]
    async fn credentials_are_cached_until_near_expiry() {
        use aws_credential_types::Credentials;
        let fresh = Credentials::new(
            "k1",
            "s1",
            None,
            Some(SystemTime::now() + Duration::from_secs(3600)),
            "t",
        );
        let c = SdkCredentials {
            provider: SharedCredentialsProvider::new(fresh),
            cached: tokio::sync::Mutex::new(None),
        };
        let a = c.get_credential().await.unwrap();
        let b = c.get_credential().await.unwrap();
        assert!(Arc::ptr_eq(&a, &b), "a fresh credential is reused");
        assert_eq!(a.key_id, "k1");
        let stale = Credentials::new(
            "k2",
            "s2",
            Some("tok".into()),
            Some(SystemTime::now() + Duration::from_secs(10)),
            "t",
        );
        let c = SdkCredentials {
            provider: SharedCredentialsProvider::new(stale),
            cached: tokio::sync::Mutex::new(None),
        };
        let a = c.get_credential().await.unwrap();
        let b = c.get_credential().await.unwrap();
        assert!(!Arc::ptr_eq(&a, &b), "a credential about to expire is fetched again");
        assert_eq!(b.token.as_deref(), Some("tok"));
    }
}
