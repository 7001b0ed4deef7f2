//! AWS Glue Data Catalog as the table pointer store.
//!
//! Same layout as Iceberg Java/pyiceberg Glue catalogs: a Glue table with parameters
//! `table_type=ICEBERG` and `metadata_location`. The compare-and-swap is `UpdateTable` with
//! the `VersionId` read together with the expected location: Glue rejects it with
//! `ConcurrentModificationException` if anyone updated the table in between.

use async_trait::async_trait;
use iceberg::io::FileIO;
use serde_json::{json, Map, Value};

use crate::catalog::{normalize_warehouse, Catalog, TableIdent};
use crate::error::{Error, Result, ServiceErrorKind};
use crate::glue_client::{CallError, GlueClient};

const METADATA_LOCATION: &str = "metadata_location";
const PREVIOUS_METADATA_LOCATION: &str = "previous_metadata_location";
const TABLE_TYPE: &str = "table_type";
const ICEBERG: &str = "ICEBERG";
const NOT_FOUND: &str = "EntityNotFoundException";
const EXISTS: &str = "AlreadyExistsException";
const CONCURRENT: &str = "ConcurrentModificationException";

/// Glue-backed catalog. The caller builds the Glue client (region, credentials, endpoint)
/// and the [`FileIO`] for the warehouse storage.
#[derive(Debug, Clone)]
pub struct GlueCatalog {
    name: String,
    warehouse: String,
    client: GlueClient,
    file_io: FileIO,
    /// Another account's catalog (its account id), read through the grants of its resource
    /// policy; `None` is the caller's own account.
    catalog_id: Option<String>,
}

impl GlueCatalog {
    /// A catalog over `client`; new tables go under `warehouse/{database}/{table}`.
    pub fn new(name: impl Into<String>, client: GlueClient, warehouse: &str, file_io: FileIO) -> Self {
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

    /// One call, naming the catalog when it is another account's.
    async fn call(&self, operation: &str, mut body: Value) -> std::result::Result<Value, CallError> {
        if let (Some(id), Some(map)) = (&self.catalog_id, body.as_object_mut()) {
            map.insert("CatalogId".into(), json!(id));
        }
        self.client.call(operation, &body).await
    }

    fn fail(&self, what: String, e: CallError) -> Error {
        // The client's own retries already ran: what is left is classified once, here, by the
        // service's error code, its HTTP status or the transport failure.
        let kind = match &e {
            CallError::Transport(_) => ServiceErrorKind::Unavailable,
            CallError::Service { code, status, .. } => ServiceErrorKind::from_code(code).unwrap_or(if *status >= 500 {
                ServiceErrorKind::Unavailable
            } else {
                ServiceErrorKind::Rejected
            }),
            CallError::Request(_) => ServiceErrorKind::Rejected,
        };
        Error::CatalogService {
            catalog: self.name.clone(),
            kind,
            detail: format!("{what}: {e}"),
        }
    }

    async fn get_table(&self, ident: &TableIdent) -> Result<Option<Value>> {
        match self
            .call("GetTable", json!({"DatabaseName": ident.namespace, "Name": ident.name}))
            .await
        {
            Ok(mut out) => Ok(Some(out["Table"].take())),
            Err(e) if e.is(NOT_FOUND) => Ok(None),
            Err(e) => Err(self.fail(format!("GetTable {ident}"), e)),
        }
    }
}

fn parameters(t: &Value) -> Map<String, Value> {
    t["Parameters"].as_object().cloned().unwrap_or_default()
}

fn is_iceberg(t: &Value) -> bool {
    t["Parameters"][TABLE_TYPE]
        .as_str()
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
        match self.call("GetDatabase", json!({"Name": namespace})).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is(NOT_FOUND) => {}
            Err(e) => return Err(self.fail(format!("GetDatabase {namespace}"), e)),
        }
        match self
            .call("CreateDatabase", json!({"DatabaseInput": {"Name": namespace}}))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is(EXISTS) => Ok(()),
            Err(e) => Err(self.fail(format!("CreateDatabase {namespace}"), e)),
        }
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({});
            if let Some(t) = &token {
                body["NextToken"] = json!(t);
            }
            let page = self
                .call("GetDatabases", body)
                .await
                .map_err(|e| self.fail("GetDatabases".into(), e))?;
            out.extend(
                page["DatabaseList"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d["Name"].as_str().map(str::to_string)),
            );
            token = page["NextToken"].as_str().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort();
        Ok(out)
    }

    async fn list_tables(&self, namespace: &str) -> Result<Vec<TableIdent>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"DatabaseName": namespace});
            if let Some(t) = &token {
                body["NextToken"] = json!(t);
            }
            let page = self
                .call("GetTables", body)
                .await
                .map_err(|e| self.fail(format!("GetTables {namespace}"), e))?;
            out.extend(
                page["TableList"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|t| is_iceberg(t))
                    .filter_map(|t| t["Name"].as_str().map(|n| TableIdent::new(namespace, n))),
            );
            token = page["NextToken"].as_str().filter(|t| !t.is_empty()).map(str::to_string);
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
            .and_then(|t| t["Parameters"][METADATA_LOCATION].as_str().map(str::to_string)))
    }

    async fn register_table(&self, ident: &TableIdent, metadata_location: &str) -> Result<()> {
        self.create_namespace(&ident.namespace).await?;
        let input = json!({
            "Name": ident.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {TABLE_TYPE: ICEBERG, METADATA_LOCATION: metadata_location},
        });
        match self
            .call(
                "CreateTable",
                json!({"DatabaseName": ident.namespace, "TableInput": input}),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is(EXISTS) => Err(Error::TableAlreadyExists {
                catalog: self.name.clone(),
                table: ident.to_string(),
            }),
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
        let mut params = parameters(&current);
        if params.get(METADATA_LOCATION).and_then(Value::as_str) != Some(expected) {
            return Ok(false);
        }
        params.insert(METADATA_LOCATION.into(), json!(new));
        params.insert(PREVIOUS_METADATA_LOCATION.into(), json!(expected));
        // The table as it is, with the new pointer: what Terraform or another tool set on it
        // (description, storage descriptor, other parameters) is kept.
        let mut input = json!({
            "Name": ident.name,
            "TableType": current["TableType"].as_str().unwrap_or("EXTERNAL_TABLE"),
            "Parameters": params,
        });
        for field in ["Description", "StorageDescriptor"] {
            if !current[field].is_null() {
                input[field] = current[field].clone();
            }
        }
        let mut body = json!({"DatabaseName": ident.namespace, "TableInput": input});
        if let Some(v) = current["VersionId"].as_str() {
            body["VersionId"] = json!(v);
        }
        match self.call("UpdateTable", body).await {
            Ok(_) => Ok(true),
            Err(e) if e.is(CONCURRENT) => Ok(false),
            Err(e) => Err(self.fail(format!("UpdateTable {ident}"), e)),
        }
    }

    async fn drop_table(&self, ident: &TableIdent) -> Result<bool> {
        match self
            .call(
                "DeleteTable",
                json!({"DatabaseName": ident.namespace, "Name": ident.name}),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is(NOT_FOUND) => Ok(false),
            Err(e) => Err(self.fail(format!("DeleteTable {ident}"), e)),
        }
    }
}
