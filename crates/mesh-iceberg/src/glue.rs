//! AWS Glue Data Catalog as the table pointer store.
//!
//! Same layout as Iceberg Java/pyiceberg Glue catalogs: a Glue table with parameters
//! `table_type=ICEBERG` and `metadata_location`. The compare-and-swap is `UpdateTable` with
//! the `VersionId` read together with the expected location: Glue rejects it with
//! `ConcurrentModificationException` if anyone updated the table in between.

use async_trait::async_trait;
use aws_sdk_glue::config::http::HttpResponse;
use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types::{DatabaseInput, Table as GlueTable, TableInput};
use aws_sdk_glue::Client;
use iceberg::io::FileIO;

use crate::catalog::{normalize_warehouse, Catalog, TableIdent};
use crate::error::{Error, ErrorChain, Result, ServiceErrorKind};

const METADATA_LOCATION: &str = "metadata_location";
const PREVIOUS_METADATA_LOCATION: &str = "previous_metadata_location";
const TABLE_TYPE: &str = "table_type";
const ICEBERG: &str = "ICEBERG";

/// The HTTPS client every AWS SDK client of meshkit uses: rustls on ring (the crypto
/// object_store's S3 client already uses), so the build needs no second crypto library. An SDK
/// configuration without a client cannot send requests: build every one with this.
pub fn aws_http_client() -> aws_sdk_glue::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Glue-backed catalog. The caller builds the Glue client (region, credentials, endpoint)
/// and the [`FileIO`] for the warehouse storage.
#[derive(Debug, Clone)]
pub struct GlueCatalog {
    name: String,
    warehouse: String,
    client: Client,
    file_io: FileIO,
    /// Another account's catalog (its account id), read through the grants of its resource
    /// policy; `None` is the caller's own account.
    catalog_id: Option<String>,
}

impl GlueCatalog {
    /// A catalog over `client`; new tables go under `warehouse/{database}/{table}`.
    pub fn new(name: impl Into<String>, client: Client, warehouse: &str, file_io: FileIO) -> Self {
        Self {
            name: name.into(),
            warehouse: normalize_warehouse(warehouse),
            client,
            file_io,
            catalog_id: None,
        }
    }

    /// The same client pointed at the Data Catalog of `account`: another domain's catalog,
    /// which its resource policy lets this account read (data products). Every request names
    /// that catalog (`CatalogId`); what the grant does not cover, Glue refuses.
    pub fn of_account(&self, account: &str) -> GlueCatalog {
        GlueCatalog {
            name: format!("{}@{account}", self.name),
            catalog_id: Some(account.to_string()),
            ..self.clone()
        }
    }

    fn fail<E>(&self, what: String, e: SdkError<E, HttpResponse>) -> Error
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        // The SDK's own retries already ran: what is left is classified once, here, by the
        // service's error code or the transport failure.
        let kind = match &e {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => ServiceErrorKind::Unavailable,
            SdkError::ServiceError(s) => {
                e.code()
                    .and_then(ServiceErrorKind::from_code)
                    .unwrap_or(if s.raw().status().is_server_error() {
                        ServiceErrorKind::Unavailable
                    } else {
                        ServiceErrorKind::Rejected
                    })
            }
            _ => ServiceErrorKind::Rejected,
        };
        Error::CatalogService {
            catalog: self.name.clone(),
            kind,
            detail: format!("{what}: {}", ErrorChain(&e)),
        }
    }

    fn build_error(&self, e: aws_sdk_glue::error::BuildError) -> Error {
        Error::CatalogService {
            catalog: self.name.clone(),
            kind: ServiceErrorKind::Rejected,
            detail: format!("invalid Glue request: {e}"),
        }
    }

    async fn get_table(&self, ident: &TableIdent) -> Result<Option<GlueTable>> {
        match self
            .client
            .get_table()
            .set_catalog_id(self.catalog_id.clone())
            .database_name(&ident.namespace)
            .name(&ident.name)
            .send()
            .await
        {
            Ok(out) => Ok(out.table().cloned()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => Ok(None),
            Err(e) => Err(self.fail(format!("GetTable {ident}"), e)),
        }
    }
}

fn is_iceberg(t: &GlueTable) -> bool {
    t.parameters()
        .and_then(|p| p.get(TABLE_TYPE))
        .is_some_and(|v| v.eq_ignore_ascii_case(ICEBERG))
}

#[async_trait]
impl Catalog for GlueCatalog {
    fn name(&self) -> &str {
        &self.name
    }

    fn warehouse(&self) -> &str {
        &self.warehouse
    }

    fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    async fn create_namespace(&self, namespace: &str) -> Result<()> {
        // Look first: in AWS the databases come from Terraform, and a runtime role may read
        // them without being allowed to create any.
        match self
            .client
            .get_database()
            .set_catalog_id(self.catalog_id.clone())
            .name(namespace)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => {}
            Err(e) => return Err(self.fail(format!("GetDatabase {namespace}"), e)),
        }
        let input = DatabaseInput::builder()
            .name(namespace)
            .build()
            .map_err(|e| self.build_error(e))?;
        match self
            .client
            .create_database()
            .set_catalog_id(self.catalog_id.clone())
            .database_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => Ok(()),
            Err(e) => Err(self.fail(format!("CreateDatabase {namespace}"), e)),
        }
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .get_databases()
                .set_catalog_id(self.catalog_id.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.fail("GetDatabases".into(), e))?;
            out.extend(page.database_list().iter().map(|d| d.name().to_string()));
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort();
        Ok(out)
    }

    async fn list_tables(&self, namespace: &str) -> Result<Vec<TableIdent>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .get_tables()
                .set_catalog_id(self.catalog_id.clone())
                .database_name(namespace)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.fail(format!("GetTables {namespace}"), e))?;
            out.extend(
                page.table_list()
                    .iter()
                    .filter(|t| is_iceberg(t))
                    .map(|t| TableIdent::new(namespace, t.name())),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort();
        Ok(out)
    }

    async fn metadata_location(&self, ident: &TableIdent) -> Result<Option<String>> {
        Ok(self
            .get_table(ident)
            .await?
            .and_then(|t| t.parameters().and_then(|p| p.get(METADATA_LOCATION)).cloned()))
    }

    async fn register_table(&self, ident: &TableIdent, metadata_location: &str) -> Result<()> {
        self.create_namespace(&ident.namespace).await?;
        let input = TableInput::builder()
            .name(&ident.name)
            .table_type("EXTERNAL_TABLE")
            .parameters(TABLE_TYPE, ICEBERG)
            .parameters(METADATA_LOCATION, metadata_location)
            .build()
            .map_err(|e| self.build_error(e))?;
        match self
            .client
            .create_table()
            .set_catalog_id(self.catalog_id.clone())
            .database_name(&ident.namespace)
            .table_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => {
                Err(Error::TableAlreadyExists {
                    catalog: self.name.clone(),
                    table: ident.to_string(),
                })
            }
            Err(e) => Err(self.fail(format!("CreateTable {ident}"), e)),
        }
    }

    async fn swap_metadata_location(&self, ident: &TableIdent, expected: &str, new: &str) -> Result<bool> {
        let Some(current) = self.get_table(ident).await? else {
            return Err(Error::TableNotFound {
                catalog: self.name.clone(),
                table: ident.to_string(),
            });
        };
        let params = current.parameters().cloned().unwrap_or_default();
        if params.get(METADATA_LOCATION).map(String::as_str) != Some(expected) {
            return Ok(false);
        }
        let mut input = TableInput::builder()
            .name(&ident.name)
            .table_type(current.table_type().unwrap_or("EXTERNAL_TABLE"))
            .set_description(current.description().map(str::to_string))
            .set_storage_descriptor(current.storage_descriptor().cloned());
        for (k, v) in params {
            if k != METADATA_LOCATION && k != PREVIOUS_METADATA_LOCATION {
                input = input.parameters(k, v);
            }
        }
        let input = input
            .parameters(METADATA_LOCATION, new)
            .parameters(PREVIOUS_METADATA_LOCATION, expected)
            .build()
            .map_err(|e| self.build_error(e))?;
        let mut req = self
            .client
            .update_table()
            .set_catalog_id(self.catalog_id.clone())
            .database_name(&ident.namespace)
            .table_input(input);
        if let Some(v) = current.version_id() {
            req = req.version_id(v);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_concurrent_modification_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.fail(format!("UpdateTable {ident}"), e)),
        }
    }

    async fn drop_table(&self, ident: &TableIdent) -> Result<bool> {
        match self
            .client
            .delete_table()
            .set_catalog_id(self.catalog_id.clone())
            .database_name(&ident.namespace)
            .name(&ident.name)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => Ok(false),
            Err(e) => Err(self.fail(format!("DeleteTable {ident}"), e)),
        }
    }
}
