//! The object operations a publish needs, behind a small trait with two implementations:
//! S3 (through the AWS SDK, in `s3`) and an in-memory store for tests of the executor.
//! Keys passed in are relative to the store's prefix: nothing outside it can be touched.

#[cfg(test)]
mod memory;
mod s3;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

#[cfg(test)]
pub use memory::MemoryStore;
pub use s3::S3Store;

use crate::object::RemoteObject;
use crate::object::{Digest, Headers};

/// A failed store operation, named by bucket and key, with what a person can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket does not exist.
    #[error(
        "bucket `{bucket}` does not exist\nhint: check the name, or create it (`skiff provision` creates a bucket with everything a site needs)"
    )]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
    },
    /// The credentials may not do this.
    #[error("access denied to {}{}\nhint: the credentials in use need s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on the bucket", subject(bucket, key.as_deref()), detail(message))]
    AccessDenied {
        /// The bucket.
        bucket: String,
        /// The key, when one was involved.
        key: Option<String>,
        /// S3's words.
        message: String,
    },
    /// The bucket is in another region than the client.
    #[error("bucket `{bucket}` is in {}\nhint: pass `--region {}` or set `[site] region`", region.as_deref().unwrap_or("another region"), region.as_deref().unwrap_or("REGION"))]
    WrongRegion {
        /// The bucket.
        bucket: String,
        /// Its region, when S3 said.
        region: Option<String>,
    },
    /// Throttled beyond the retries.
    #[error("S3 kept throttling requests for {}, even after retries{}\nhint: re-run later or with a lower `--concurrency`", subject(bucket, key.as_deref()), detail(message))]
    Throttled {
        /// The bucket.
        bucket: String,
        /// The key.
        key: Option<String>,
        /// S3's words.
        message: String,
    },
    /// No usable credentials.
    #[error(
        "AWS credentials were missing or refused: {message}\nhint: set AWS_PROFILE (or `--profile`), run `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    Credentials {
        /// What the SDK said (never the credentials themselves).
        message: String,
    },
    /// The endpoint could not be reached.
    #[error("could not reach S3 for {}: {message}\nhint: check the network, `--endpoint-url` and AWS_ENDPOINT_URL", subject(bucket, key.as_deref()))]
    Connection {
        /// The bucket.
        bucket: String,
        /// The key.
        key: Option<String>,
        /// What failed.
        message: String,
    },
    /// A conditional write lost (someone else wrote first).
    #[error("{} does not exist", subject(bucket, Some(key)))]
    NotFound { bucket: String, key: String },
    #[error("{} was changed by someone else at the same time", subject(bucket, Some(key)))]
    PreconditionFailed {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// The local file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file changed between the scan and the upload.
    #[error("`{}` changed while it was being published: its bytes no longer match the scan; re-run when the build is finished", path.display())]
    ChangedDuringPublish {
        /// The file.
        path: PathBuf,
    },
    /// A whole DeleteObjects request failed.
    #[error(
        "`s3://{bucket}/{key}`: the store refused the upload's checksum headers ({message})\nhint: set `[site] checksums = false` for an S3-compatible store that does not take them"
    )]
    ChecksumRefused { bucket: String, key: String, message: String },
    #[error("could not delete `{key}`: {cause}")]
    DeleteFailed {
        /// The key.
        key: String,
        /// Why the request failed.
        cause: String,
    },
    /// Anything else S3 said.
    #[error("S3 refused the request for {}: {code}{}", subject(bucket, key.as_deref()), detail(message))]
    Other {
        /// The bucket.
        bucket: String,
        /// The key.
        key: Option<String>,
        /// S3's error code (or the HTTP status).
        code: String,
        /// S3's words.
        message: String,
    },
}

fn subject(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("`s3://{bucket}/{key}`"),
        None => format!("bucket `{bucket}`"),
    }
}

fn detail(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(" ({message})") }
}

/// What a file upload needs to know.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    /// The key, relative to the prefix.
    pub key: &'a str,
    /// The bytes to send (the file, or its gzip copy).
    pub path: &'a Path,
    /// The site file it comes from, for messages.
    pub source: &'a Path,
    /// Their size, as scanned.
    pub size: u64,
    /// Their BLAKE3, as scanned: the bytes sent must still have it.
    pub blake3: Digest,
    /// Headers to store.
    pub headers: &'a Headers,
}

/// A condition on a small write, for compare-and-swap of skiff's own state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Write whatever is there.
    Always,
    /// Only if the object still has this ETag (`If-Match`).
    IfMatch(String),
    /// Only if there is no such object yet (`If-None-Match: *`).
    IfAbsent,
}

/// An object read whole: its bytes and ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The ETag, as S3 quotes it.
    pub etag: String,
}

/// A manifest read from the bucket: parsed (or why it could not be), and its ETag.
#[derive(Debug)]
pub struct FetchedManifest {
    /// The manifest, or why it cannot be used.
    pub manifest: Result<crate::state::Manifest, crate::state::ManifestError>,
    /// Its ETag, as S3 quotes it.
    pub etag: String,
}

/// Per-key result of a batch delete.
pub type DeleteResults = Vec<(String, Result<(), StoreError>)>;

/// The object operations of a publish. Keys are relative to the store's prefix.
pub trait Store: Send + Sync + 'static {
    /// `s3://bucket/prefix`, for messages.
    fn location(&self) -> String;

    /// An object's bytes and ETag, or `None` when it does not exist.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Fetched>, StoreError>> + Send;

    /// A manifest ([`crate::state::Manifest`]), or `None` when there is no such object.
    fn get_manifest(&self, key: &str) -> impl Future<Output = Result<Option<FetchedManifest>, StoreError>> + Send {
        async move {
            let fetched = self.get(key).await?;
            Ok(fetched.map(|f| FetchedManifest { manifest: crate::state::Manifest::parse(&f.bytes), etag: f.etag }))
        }
    }

    /// Every object under the prefix, keys relative to it.
    fn list(&self) -> impl Future<Output = Result<BTreeMap<String, RemoteObject>, StoreError>> + Send;

    /// Upload a file (multipart when large); returns the new ETag.
    fn put_file(&self, upload: Upload<'_>) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Store small bytes when `condition` holds (else [`StoreError::PreconditionFailed`]);
    /// returns the new ETag.
    fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        condition: Condition,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// [`Store::put_bytes`] for bytes written to a file first (a manifest of 100k files is
    /// ~25 MB). This default reads the file into memory; S3 sends it from disk.
    fn put_bytes_from(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
        condition: Condition,
    ) -> impl Future<Output = Result<String, StoreError>> + Send {
        async move {
            let bytes = std::fs::read(path).map_err(|source| StoreError::File { path: path.to_path_buf(), source })?;
            self.put_bytes(key, bytes, content_type, condition).await
        }
    }

    /// Replace an object's headers without sending its bytes, only if it still has
    /// `if_match` as its ETag when given; returns its ETag.
    fn update_headers(
        &self,
        key: &str,
        headers: &Headers,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Server-side copy of `source` (a key from the bucket's root, not the prefix: another
    /// deploy) to `key`, stored with `headers`; no bytes pass through skiff. Returns the ETag.
    fn copy(
        &self,
        source: &str,
        key: &str,
        headers: &Headers,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Delete up to 1,000 keys in one request.
    fn delete(&self, keys: &[String]) -> impl Future<Output = Result<DeleteResults, StoreError>> + Send;
}

/// S3's limit on keys per DeleteObjects request.
pub const DELETE_BATCH: usize = 1000;
