//! One object-storage configuration for everything: Iceberg metadata and data files (as an
//! Iceberg [`Storage`]), raw files and DataFusion's object-store registry all go through the
//! same [`ObjectStores`], so an endpoint, region or credential is configured once.
//!
//! Locations are URLs: `s3://bucket/key` (one `object_store` S3 client per bucket, built on
//! first use) and `file:///abs/path` or a plain absolute path (the local file system).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use iceberg::io::{
    FileIO, FileIOBuilder, FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig,
    StorageFactory,
};
use object_store::aws::{AmazonS3Builder, AwsCredentialProvider};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

/// How to reach S3: the settings shared by every bucket of a runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Options {
    /// Signing region, e.g. `eu-west-1` (the domain's region). `None`: `AWS_REGION` or the
    /// `object_store` default.
    pub region: Option<String>,
    /// Endpoint override, e.g. `http://127.0.0.1:5000` for a local S3 server; `None` is AWS.
    /// Plain `http://` is allowed only for an endpoint given here.
    pub endpoint: Option<String>,
    /// `{bucket}.{endpoint}` addressing instead of path style (`{endpoint}/{bucket}`). Local
    /// S3 servers (moto, s3s-fs) need path style, which AWS also serves.
    pub virtual_hosted_style: bool,
}

/// Errors of locating an object store for a URL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported storage location `{location}`: use s3://bucket/key, file:///absolute/path or an absolute path"
    )]
    Scheme { location: String },
    #[error("invalid storage location `{location}`: {detail}")]
    Path { location: String, detail: String },
    #[error("cannot configure S3 for bucket `{bucket}`: {source}\n  help: check AWS_REGION, AWS_ENDPOINT_URL and the AWS credentials")]
    S3 {
        bucket: String,
        #[source]
        source: object_store::Error,
    },
}

/// A store and the path of one object (or prefix) in it, with the URL it came from.
#[derive(Debug, Clone)]
pub struct Located {
    pub store: Arc<dyn ObjectStore>,
    pub path: Path,
    /// `s3://bucket` or `file://`: prefix that turns a [`Path`] of this store back into a URL.
    pub base: String,
}

impl Located {
    /// The URL of an object of this store, e.g. from a listing.
    pub fn url(&self, p: &Path) -> String {
        format!("{}/{}", self.base, p.as_ref())
    }
}

/// The object stores of one runtime, cheap to clone. S3 clients are built per bucket on
/// first use and cached; credentials come from the provider given (the AWS SDK's default
/// chain in `mesh-core`) or, when there is none, from `object_store`'s own environment chain
/// (`AWS_ACCESS_KEY_ID`…, web identity, container and instance credentials).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ObjectStores {
    s3: S3Options,
    // Not serialized: a deserialized copy falls back to the environment's credentials.
    #[serde(skip)]
    credentials: Option<AwsCredentialProvider>,
    #[serde(skip)]
    cache: Arc<Mutex<HashMap<String, Arc<dyn ObjectStore>>>>,
}

impl fmt::Debug for ObjectStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStores")
            .field("s3", &self.s3)
            .field("credentials", &self.credentials.as_ref().map(|_| "provider"))
            .finish()
    }
}

const LOCAL: &str = "file://";

impl ObjectStores {
    /// Stores with S3 settings; `credentials` overrides the environment's chain.
    pub fn new(s3: S3Options, credentials: Option<AwsCredentialProvider>) -> Self {
        Self {
            s3,
            credentials,
            cache: Default::default(),
        }
    }

    pub fn s3_options(&self) -> &S3Options {
        &self.s3
    }

    /// An Iceberg [`FileIO`] over these stores.
    pub fn file_io(&self) -> FileIO {
        FileIOBuilder::new(Arc::new(ObjectStorageFactory { stores: self.clone() })).build()
    }

    /// The S3 client of a bucket (cached).
    pub fn bucket(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let key = format!("s3://{bucket}");
        if let Some(s) = self.cache.lock().expect("store cache lock").get(&key) {
            return Ok(s.clone());
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_virtual_hosted_style_request(self.s3.virtual_hosted_style);
        if let Some(r) = &self.s3.region {
            b = b.with_region(r);
        }
        if let Some(e) = &self.s3.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        if let Some(c) = &self.credentials {
            b = b.with_credentials(c.clone());
        }
        let store: Arc<dyn ObjectStore> = Arc::new(b.build().map_err(|source| StoreError::S3 {
            bucket: bucket.to_string(),
            source,
        })?);
        self.cache
            .lock()
            .expect("store cache lock")
            .entry(key)
            .or_insert(store.clone());
        Ok(store)
    }

    fn local(&self) -> Arc<dyn ObjectStore> {
        self.cache
            .lock()
            .expect("store cache lock")
            .entry(LOCAL.to_string())
            .or_insert_with(|| Arc::new(LocalFileSystem::new()))
            .clone()
    }

    /// The store and path of a location URL.
    pub fn locate(&self, location: &str) -> Result<Located, StoreError> {
        let bad = |detail: String| StoreError::Path {
            location: location.to_string(),
            detail,
        };
        if let Some(rest) = location
            .strip_prefix("s3://")
            .or_else(|| location.strip_prefix("s3a://"))
        {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name".into()));
            }
            let path = Path::parse(key.trim_end_matches('/')).map_err(|e| bad(e.to_string()))?;
            return Ok(Located {
                store: self.bucket(bucket)?,
                path,
                base: format!("s3://{bucket}"),
            });
        }
        let fs_path = match location.strip_prefix("file://") {
            Some(p) => p,
            None if location.starts_with('/') => location,
            None => {
                return Err(StoreError::Scheme {
                    location: location.to_string(),
                })
            }
        };
        let path = Path::from_absolute_path(fs_path.trim_end_matches('/')).map_err(|e| bad(e.to_string()))?;
        Ok(Located {
            store: self.local(),
            path,
            base: "file://".to_string(),
        })
    }

    /// Every S3 store built so far, by `s3://bucket` URL (for DataFusion's registry).
    pub fn s3_stores(&self) -> Vec<(String, Arc<dyn ObjectStore>)> {
        let mut v: Vec<_> = self
            .cache
            .lock()
            .expect("store cache lock")
            .iter()
            .filter(|(k, _)| k.starts_with("s3://"))
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// An Iceberg error naming the operation and the location; the store's error is the source.
fn io_error<E: std::error::Error + Send + Sync + 'static>(what: &str, location: &str, e: E) -> iceberg::Error {
    iceberg::Error::new(iceberg::ErrorKind::Unexpected, format!("{what} `{location}`: {e}")).with_source(e)
}

/// Iceberg [`Storage`] backed by [`ObjectStores`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectStorage {
    stores: ObjectStores,
}

impl ObjectStorage {
    fn locate(&self, what: &str, location: &str) -> iceberg::Result<Located> {
        self.stores.locate(location).map_err(|e| io_error(what, location, e))
    }
}

#[async_trait]
#[typetag::serde]
impl Storage for ObjectStorage {
    async fn exists(&self, path: &str) -> iceberg::Result<bool> {
        let l = self.locate("cannot check", path)?;
        match l.store.head(&l.path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(io_error("cannot check", path, e)),
        }
    }

    async fn metadata(&self, path: &str) -> iceberg::Result<FileMetadata> {
        let l = self.locate("cannot stat", path)?;
        let meta = l
            .store
            .head(&l.path)
            .await
            .map_err(|e| io_error("cannot stat", path, e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> iceberg::Result<Bytes> {
        let l = self.locate("cannot read", path)?;
        let get = l
            .store
            .get(&l.path)
            .await
            .map_err(|e| io_error("cannot read", path, e))?;
        get.bytes().await.map_err(|e| io_error("cannot read", path, e))
    }

    async fn reader(&self, path: &str) -> iceberg::Result<Box<dyn FileRead>> {
        let l = self.locate("cannot read", path)?;
        Ok(Box::new(ObjectRead {
            location: path.to_string(),
            store: l.store,
            path: l.path,
        }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> iceberg::Result<()> {
        let l = self.locate("cannot write", path)?;
        // A single PUT: on S3 and on the local store (temp file + rename) readers see the whole
        // object or nothing.
        l.store
            .put(&l.path, PutPayload::from_bytes(bs))
            .await
            .map_err(|e| io_error("cannot write", path, e))?;
        Ok(())
    }

    async fn writer(&self, path: &str) -> iceberg::Result<Box<dyn FileWrite>> {
        let l = self.locate("cannot write", path)?;
        Ok(Box::new(ObjectWrite {
            location: path.to_string(),
            writer: Some(object_store::buffered::BufWriter::new(l.store, l.path)),
        }))
    }

    async fn delete(&self, path: &str) -> iceberg::Result<()> {
        let l = self.locate("cannot delete", path)?;
        match l.store.delete(&l.path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error("cannot delete", path, e)),
        }
    }

    async fn delete_prefix(&self, path: &str) -> iceberg::Result<()> {
        let l = self.locate("cannot delete", path)?;
        let listed = l.store.list(Some(&l.path)).map_ok(|m| m.location).boxed();
        l.store
            .delete_stream(listed)
            .try_for_each(|_| futures::future::ready(Ok(())))
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(()),
                e => Err(io_error("cannot delete under", path, e)),
            })
    }

    async fn delete_stream(&self, paths: BoxStream<'static, String>) -> iceberg::Result<()> {
        let this = self.clone();
        paths
            .map(Ok::<String, iceberg::Error>)
            .try_for_each_concurrent(8, |p| {
                let this = this.clone();
                async move { this.delete(&p).await }
            })
            .await
    }

    fn new_input(&self, path: &str) -> iceberg::Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> iceberg::Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

/// Builds [`ObjectStorage`] for [`FileIO`]; the storage properties of Iceberg's config are not
/// used: the stores carry their own settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectStorageFactory {
    stores: ObjectStores,
}

#[typetag::serde]
impl StorageFactory for ObjectStorageFactory {
    fn build(&self, _config: &StorageConfig) -> iceberg::Result<Arc<dyn Storage>> {
        Ok(Arc::new(ObjectStorage {
            stores: self.stores.clone(),
        }))
    }
}

struct ObjectRead {
    location: String,
    store: Arc<dyn ObjectStore>,
    path: Path,
}

#[async_trait]
impl FileRead for ObjectRead {
    async fn read(&self, range: Range<u64>) -> iceberg::Result<Bytes> {
        self.store
            .get_range(&self.path, range)
            .await
            .map_err(|e| io_error("cannot read", &self.location, e))
    }
}

/// Buffered upload: small files are one PUT, large ones a multipart upload that becomes
/// visible only when it completes.
struct ObjectWrite {
    location: String,
    writer: Option<object_store::buffered::BufWriter>,
}

#[async_trait]
impl FileWrite for ObjectWrite {
    async fn write(&mut self, bs: Bytes) -> iceberg::Result<()> {
        let w = self.writer.as_mut().ok_or_else(|| {
            iceberg::Error::new(
                iceberg::ErrorKind::Unexpected,
                format!("cannot write `{}`: already closed", self.location),
            )
        })?;
        w.put(bs).await.map_err(|e| io_error("cannot write", &self.location, e))
    }

    async fn close(&mut self) -> iceberg::Result<()> {
        let Some(mut w) = self.writer.take() else {
            return Ok(());
        };
        std::future::poll_fn(|cx| tokio::io::AsyncWrite::poll_shutdown(std::pin::Pin::new(&mut w), cx))
            .await
            .map_err(|e| {
                iceberg::Error::new(
                    iceberg::ErrorKind::Unexpected,
                    format!("cannot write `{}`: {e}", self.location),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_round_trip_through_file_io() {
        let dir = tempfile::tempdir().unwrap();
        let io = ObjectStores::default().file_io();
        let loc = format!("file://{}/t/metadata/v1.json", dir.path().display());
        assert!(!io.exists(&loc).await.unwrap());
        io.new_output(&loc)
            .unwrap()
            .write(Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert!(io.exists(&loc).await.unwrap());
        assert_eq!(
            io.new_input(&loc).unwrap().read().await.unwrap(),
            Bytes::from_static(b"{}")
        );
        let data = format!("{}/t/data/x=1/f.parquet", dir.path().display());
        let mut w = io.new_output(&data).unwrap().writer().await.unwrap();
        w.write(Bytes::from_static(b"abc")).await.unwrap();
        w.write(Bytes::from_static(b"def")).await.unwrap();
        w.close().await.unwrap();
        let input = io.new_input(&data).unwrap();
        assert_eq!(input.metadata().await.unwrap().size, 6);
        assert_eq!(
            input.reader().await.unwrap().read(2..5).await.unwrap(),
            Bytes::from_static(b"cde")
        );
        io.delete_prefix(format!("file://{}/t", dir.path().display()))
            .await
            .unwrap();
        assert!(!io.exists(&loc).await.unwrap());
        assert!(!io.exists(&data).await.unwrap());
        // Deleting what is not there is not an error (retried cleanups).
        io.delete(&loc).await.unwrap();
    }

    #[test]
    fn locations() {
        let s = ObjectStores::new(
            S3Options {
                region: Some("eu-west-1".into()),
                endpoint: Some("http://127.0.0.1:9".into()),
                virtual_hosted_style: false,
            },
            None,
        );
        let l = s.locate("s3://f01-raw-dev/pj01/sales_events/").unwrap();
        assert_eq!(l.path.as_ref(), "pj01/sales_events");
        assert_eq!(l.url(&l.path), "s3://f01-raw-dev/pj01/sales_events");
        let l = s.locate("/tmp/x/y").unwrap();
        assert_eq!(l.url(&l.path), "file:///tmp/x/y");
        assert!(matches!(s.locate("gs://b/k"), Err(StoreError::Scheme { .. })));
        assert!(matches!(s.locate("relative/path"), Err(StoreError::Scheme { .. })));
        assert_eq!(s.s3_stores().len(), 1);
    }
}
