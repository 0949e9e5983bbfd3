//! The store on S3, through `aws-sdk-s3`: the only module that knows that crate's types.
//! Every SDK error is mapped to a [`StoreError`] that names the bucket and key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::aws::Failure;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, MetadataDirective, ObjectIdentifier,
};
use tokio::task::JoinSet;

use super::{Condition, DeleteResults, Fetched, FetchedManifest, StoreError, Upload};
use crate::key;
use crate::object::{Digest, Headers, RemoteObject};

/// Smallest multipart part S3 accepts (but the last).
const MIN_PART: u64 = 8 * 1024 * 1024;
/// S3's limit on parts per upload.
const MAX_PARTS: u64 = 10_000;
/// Parts of one file in flight at once.
const PART_CONCURRENCY: usize = 4;
/// Keys per range of a parallel listing: one page (S3 lists at most 1,000 keys a page).
const RANGE_KEYS: usize = 1000;

/// Objects of a listing, in key order (keys relative to the prefix).
type Listed = Vec<(String, RemoteObject)>;

/// A bucket and a prefix on S3.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    multipart_threshold: u64,
    /// Whether uploads carry checksums: the file's SHA-256 on a single PUT, CRC32 on each
    /// part of a multipart upload. Shared by every clone, so the first store that refuses
    /// them turns them off for the rest of the run.
    checksums: Arc<AtomicBool>,
}

impl S3Store {
    /// One page of the listing: after `start_after`, or where `token` left off; and the
    /// token of the next page.
    async fn list_page(
        &self,
        start_after: Option<&str>,
        token: Option<String>,
    ) -> Result<(Listed, Option<String>), StoreError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .set_start_after(start_after.map(|key| self.full(key)))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| self.error(&e, None))?;
        let mut objects = Vec::with_capacity(page.contents().len());
        for object in page.contents() {
            let Some(full) = object.key() else { continue };
            let Some(key) = full.strip_prefix(self.prefix.as_str()) else { continue };
            objects.push((
                key.to_string(),
                RemoteObject {
                    etag: object.e_tag().unwrap_or_default().to_string(),
                    size: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
                },
            ));
        }
        let token =
            if page.is_truncated() == Some(true) { page.next_continuation_token().map(str::to_string) } else { None };
        Ok((objects, token))
    }

    /// The objects in `(after, upto]`: from `first` (a page already read, and its token) or
    /// from a page after `after`, following pages until one passes `upto`.
    async fn list_range(
        &self,
        after: Option<String>,
        upto: Option<String>,
        first: Option<(Listed, Option<String>)>,
    ) -> Result<Listed, StoreError> {
        let (mut page, mut token) = match first {
            Some(first) => first,
            None => Box::pin(self.list_page(after.as_deref(), None)).await?,
        };
        let mut out = Vec::new();
        loop {
            // A page that reaches `upto` ends the range: every later key is past it.
            let past = upto.as_ref().is_some_and(|upto| page.last().is_some_and(|(key, _)| key >= upto));
            if let Some(upto) = &upto {
                page.retain(|(key, _)| key <= upto);
            }
            out.append(&mut page);
            let Some(next) = token.take().filter(|_| !past) else { return Ok(out) };
            (page, token) = Box::pin(self.list_page(None, Some(next))).await?;
        }
    }

    /// The manifest (`manifest`, read meanwhile) and every object under the prefix: the
    /// first page is read at the same time as the manifest; after it, the rest of the
    /// listing runs as ranges in parallel, split after every 1,000th key of the manifest
    /// (`StartAfter`; the first range is the first page when the bucket holds what the
    /// manifest says), `concurrency` at a time. The result is exactly what one listing from
    /// start to end gives: the ranges meet end to end, and the last one runs to the end
    /// whatever the manifest says. Without a manifest it is one listing, page after page.
    pub async fn list_with_manifest<F>(
        &self,
        manifest: F,
        concurrency: usize,
    ) -> (Result<Option<FetchedManifest>, StoreError>, Result<BTreeMap<String, RemoteObject>, StoreError>)
    where
        F: Future<Output = Result<Option<FetchedManifest>, StoreError>>,
    {
        let (manifest, first) = tokio::join!(manifest, Box::pin(self.list_page(None, None)));
        let keys: Vec<&str> = match &manifest {
            Ok(Some(FetchedManifest { manifest: Ok(m), .. })) => m.files.keys().collect(),
            _ => Vec::new(),
        };
        let listed = async {
            let (head, token) = first?;
            // The first page is the first range. After its last key, the manifest's keys
            // split the rest every 1,000: each range is one page when the bucket holds what
            // the manifest says, and the last one runs to the end.
            let last = head.last().map(|(key, _)| key.clone()).unwrap_or_default();
            let from = keys.partition_point(|key| *key <= last.as_str());
            let splits: Vec<String> =
                keys.iter().skip(from + RANGE_KEYS - 1).step_by(RANGE_KEYS).map(|k| (*k).to_string()).collect();
            if token.is_none() || splits.is_empty() {
                let all = self.list_range(None, None, Some((head, token))).await?;
                return Ok(all.into_iter().collect());
            }
            let mut bounds = vec![last];
            bounds.extend(splits);
            let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
            let mut ranges = JoinSet::new();
            for (index, after) in bounds.iter().enumerate() {
                let (store, limit) = (self.clone(), Arc::clone(&limit));
                let (after, upto) = (after.clone(), bounds.get(index + 1).cloned());
                ranges.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    (index + 1, store.list_range(Some(after), upto, None).await)
                });
            }
            let mut parts: Vec<Option<Listed>> = vec![None; bounds.len() + 1];
            parts[0] = Some(head);
            while let Some(done) = ranges.join_next().await {
                let (index, listed) = done.map_err(|e| StoreError::Other {
                    bucket: self.bucket.clone(),
                    key: None,
                    code: "listing".to_string(),
                    message: format!("a listing task failed: {e}"),
                })?;
                parts[index] = Some(listed?);
            }
            Ok(parts.into_iter().flatten().flatten().collect())
        }
        .await;
        (manifest, listed)
    }

    /// A store for `s3://bucket/prefix`; `prefix` is empty or ends with `/`.
    pub fn new(client: Client, bucket: &str, prefix: &str, multipart_threshold: u64) -> Self {
        Self {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            multipart_threshold,
            checksums: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The same store, sending upload checksums or not (`[site] checksums = false`).
    #[must_use]
    pub fn with_checksums(self, enabled: bool) -> Self {
        self.checksums.store(enabled, Ordering::Relaxed);
        self
    }

    /// Whether uploads still carry checksums.
    pub fn sends_checksums(&self) -> bool {
        self.checksums.load(Ordering::Relaxed)
    }

    /// The store refused a checksum: warn (once a run) and send none from now on.
    fn checksums_refused(&self, key: &str, message: &str) {
        if self.checksums.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "`s3://{}/{}` refused the upload's checksum ({message}); uploading without checksums for the rest of this run\nhint: set `[site] checksums = false` in skiff.toml for this store",
                self.bucket,
                self.full(key)
            );
        }
    }

    /// The same store through a client for another region.
    #[must_use]
    pub fn in_region(&self, region: &str) -> Self {
        Self { client: crate::aws::s3_in_region(&self.client, region), ..self.clone() }
    }

    /// The same bucket (and client) under another prefix (from the bucket's root).
    #[must_use]
    pub fn with_prefix(&self, prefix: &str) -> Self {
        Self { prefix: prefix.to_string(), ..self.clone() }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn error<E>(&self, err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>, key: Option<&str>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let bucket = self.bucket.clone();
        let key = key.map(|k| self.full(k));
        let (code, message, status, region) = match crate::aws::failure(err) {
            Failure::Credentials(message) => return StoreError::Credentials { message },
            Failure::Connection(message) => return StoreError::Connection { bucket, key, message },
            Failure::Service { code, message, status, bucket_region } => (code, message, status, bucket_region),
        };
        match (code.as_deref(), status) {
            (Some("NoSuchBucket"), _) => StoreError::NoSuchBucket { bucket },
            (Some("NoSuchKey"), _) | (None, Some(404)) if key.is_some() => {
                StoreError::NotFound { bucket, key: key.unwrap_or_default() }
            }
            (Some("PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException"), _)
            | (_, Some(301)) => StoreError::WrongRegion { bucket, region },
            (Some("AccessDenied" | "AllAccessDisabled"), _) | (None, Some(403)) => {
                StoreError::AccessDenied { bucket, key, message }
            }
            (Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken"), _) => {
                StoreError::Credentials { message: format!("{}: {message}", code.unwrap_or_default()) }
            }
            (Some("SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded"), _) | (_, Some(503)) => {
                StoreError::Throttled { bucket, key, message }
            }
            (Some("PreconditionFailed" | "ConditionalRequestConflict"), _) | (_, Some(412)) => {
                StoreError::PreconditionFailed { bucket, key: key.unwrap_or_default() }
            }
            (Some("BadDigest" | "XAmzContentSHA256Mismatch" | "InvalidDigest"), _) => StoreError::Other {
                bucket,
                key,
                code: code.unwrap_or_default(),
                message: format!("{message} (the file changed while it was uploaded?)"),
            },
            (code, status) => StoreError::Other {
                bucket,
                key,
                code: code.map_or_else(|| format!("HTTP {}", status.unwrap_or(0)), str::to_string),
                message,
            },
        }
    }

    /// The error of an upload request; one that refuses the checksum headers it carried is
    /// [`StoreError::ChecksumRefused`].
    fn upload_error<E>(
        &self,
        err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
        key: &str,
        checksums: bool,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match crate::aws::failure(err) {
            Failure::Service { code, message, status, .. }
                if checksums && refuses_checksums(code.as_deref(), &message, status) =>
            {
                StoreError::ChecksumRefused {
                    bucket: self.bucket.clone(),
                    key: self.full(key),
                    message: format!("{}: {message}", code.unwrap_or_else(|| format!("HTTP {}", status.unwrap_or(0)))),
                }
            }
            _ => self.error(err, Some(key)),
        }
    }

    async fn put_single(&self, upload: &Upload<'_>, checksums: bool) -> Result<String, StoreError> {
        // The SHA-256 of the bytes about to be sent, read with their BLAKE3: bytes that are
        // no longer the ones scanned are not sent at all.
        let sha256 = if checksums { read_again(upload, true).await? } else { None };
        let body =
            ByteStream::read_from().path(upload.path).length(Length::Exact(upload.size)).build().await.map_err(
                |e| StoreError::File { path: upload.source.to_path_buf(), source: std::io::Error::other(e) },
            )?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(upload.key))
            .body(body)
            .content_length(i64::try_from(upload.size).unwrap_or(i64::MAX))
            .set_cache_control(upload.headers.cache_control.as_ref().map(String::from))
            .set_content_encoding(upload.headers.content_encoding.as_ref().map(String::from))
            .content_type(upload.headers.content_type.as_str());
        // S3 refuses bytes that do not match the SHA-256 (BadDigest), so a file changed
        // between that read and the upload never goes live.
        let request = match sha256 {
            Some(sha256) => request.checksum_algorithm(ChecksumAlgorithm::Sha256).checksum_sha256(sha256.to_base64()),
            None => request,
        };
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) => {
                let err = self.upload_error(&e, upload.key, checksums);
                // BadDigest: the bytes sent were not the ones scanned. Say so when the file
                // has changed since (a build still writing), which is the usual cause.
                if matches!(&err, StoreError::Other { code, .. } if code == "BadDigest") {
                    still_scanned(upload).await?;
                }
                return Err(err);
            }
        };
        // S3 refuses bytes that do not match the checksum; stores that do not check (and
        // the emulator) get a second look here, so the manifest never records bytes that
        // were not the ones sent.
        still_scanned(upload).await?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    async fn put_multipart(&self, upload: &Upload<'_>, checksums: bool) -> Result<String, StoreError> {
        let full = self.full(upload.key);
        // The algorithm is declared here and used by every part (S3 refuses parts whose
        // checksum differs from the one CreateMultipartUpload named), and CompleteMultipartUpload
        // lists each part's CRC32: S3 checks every part as it arrives.
        // <https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html>
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .set_checksum_algorithm(checksums.then_some(ChecksumAlgorithm::Crc32))
            .set_cache_control(upload.headers.cache_control.as_ref().map(String::from))
            .set_content_encoding(upload.headers.content_encoding.as_ref().map(String::from))
            .content_type(upload.headers.content_type.as_str())
            .send()
            .await
            .map_err(|e| self.upload_error(&e, upload.key, checksums))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let uploaded = match self.upload_parts(upload, &full, &upload_id, checksums).await {
            Ok(parts) => still_scanned(upload).await.map(|()| parts),
            Err(err) => Err(err),
        };
        match uploaded {
            Ok(parts) => {
                let done = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&full)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await;
                match done {
                    Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
                    Err(e) => {
                        self.abort(&full, &upload_id).await;
                        Err(self.upload_error(&e, upload.key, checksums))
                    }
                }
            }
            Err(err) => {
                // An unfinished multipart upload is billed until aborted.
                self.abort(&full, &upload_id).await;
                Err(err)
            }
        }
    }

    async fn upload_parts(
        &self,
        upload: &Upload<'_>,
        full: &str,
        upload_id: &str,
        checksums: bool,
    ) -> Result<Vec<CompletedPart>, StoreError> {
        let part_size = part_size(upload.size);
        let count = upload.size.div_ceil(part_size).max(1);
        let mut parts = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut running = JoinSet::new();
        for number in 1..=count {
            let offset = (number - 1) * part_size;
            let length = part_size.min(upload.size - offset);
            let (client, bucket, key, id, path, source) = (
                self.client.clone(),
                self.bucket.clone(),
                full.to_string(),
                upload_id.to_string(),
                upload.path.to_path_buf(),
                upload.source.to_path_buf(),
            );
            running.spawn(async move {
                let body = ByteStream::read_from()
                    .path(&path)
                    .offset(offset)
                    .length(Length::Exact(length))
                    .build()
                    .await
                    .map_err(|e| {
                        PartError::Store(StoreError::File { path: source.clone(), source: std::io::Error::other(e) })
                    })?;
                let part_number = i32::try_from(number).unwrap_or(i32::MAX);
                client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(id)
                    .part_number(part_number)
                    .content_length(i64::try_from(length).unwrap_or(i64::MAX))
                    .set_checksum_algorithm(checksums.then_some(ChecksumAlgorithm::Crc32))
                    .body(body)
                    .send()
                    .await
                    .map(|out| {
                        CompletedPart::builder()
                            .part_number(part_number)
                            .set_e_tag(out.e_tag().map(str::to_string))
                            .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                            .build()
                    })
                    .map_err(|e| PartError::Sdk(Box::new(e)))
            });
            while running.len() >= PART_CONCURRENCY {
                parts.push(self.next_part(&mut running, upload.key, checksums).await?);
            }
        }
        while !running.is_empty() {
            parts.push(self.next_part(&mut running, upload.key, checksums).await?);
        }
        parts.sort_by_key(CompletedPart::part_number);
        Ok(parts)
    }

    async fn next_part(
        &self,
        running: &mut JoinSet<Result<CompletedPart, PartError>>,
        key: &str,
        checksums: bool,
    ) -> Result<CompletedPart, StoreError> {
        match running.join_next().await {
            Some(Ok(Ok(part))) => Ok(part),
            Some(Ok(Err(PartError::Store(err)))) => Err(err),
            Some(Ok(Err(PartError::Sdk(sdk)))) => Err(self.upload_error(&sdk, key, checksums)),
            Some(Err(join)) => Err(self.internal(key, join.to_string())),
            None => Err(self.internal(key, "no part upload was running".into())),
        }
    }

    /// GetObject, or `None` when there is no such key.
    async fn open(&self, key: &str) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, StoreError> {
        match self.client.get_object().bucket(&self.bucket).key(self.full(key)).send().await {
            Ok(out) => Ok(Some(out)),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key) =>
            {
                Ok(None)
            }
            Err(err) => Err(self.error(&err, Some(key))),
        }
    }

    /// A task of skiff's own that panicked or vanished, for `key`.
    fn internal(&self, key: &str, message: String) -> StoreError {
        StoreError::Other { bucket: self.bucket.clone(), key: Some(self.full(key)), code: "internal".into(), message }
    }

    /// A response body that broke off while it was read.
    fn body_error(&self, key: &str, err: &dyn std::error::Error) -> StoreError {
        StoreError::Connection {
            bucket: self.bucket.clone(),
            key: Some(self.full(key)),
            message: crate::aws::causes(err),
        }
    }

    /// A small PutObject of skiff's own state, when `condition` holds.
    async fn put_body(
        &self,
        key: &str,
        body: ByteStream,
        content_type: &str,
        condition: Condition,
    ) -> Result<String, StoreError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .body(body)
            .content_type(content_type)
            .cache_control("no-store");
        let if_match = matches!(condition, Condition::IfMatch(_));
        request = match condition {
            Condition::Always => request,
            Condition::IfMatch(etag) => request.if_match(etag),
            Condition::IfAbsent => request.if_none_match("*"),
        };
        let out = request.send().await.map_err(|e| {
            // An If-Match put on a key that is gone (deleted since we read it: a lock released
            // while we took it over) gets 404 NoSuchKey, not 412; either way the object is not
            // the one we read, and the caller reads again.
            // <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>
            match self.error(&e, Some(key)) {
                StoreError::NotFound { .. } if if_match => {
                    StoreError::PreconditionFailed { bucket: self.bucket.clone(), key: self.full(key) }
                }
                err => err,
            }
        })?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    async fn abort(&self, full: &str, upload_id: &str) {
        let result =
            self.client.abort_multipart_upload().bucket(&self.bucket).key(full).upload_id(upload_id).send().await;
        if let Err(err) = result {
            tracing::warn!(key = full, upload_id, "could not abort the multipart upload: {}", DisplayErrorContext(err));
        }
    }
}

/// Whether an error answers checksum headers the store does not take, as S3-compatible
/// stores do (R2 and older MinIO: 501 `NotImplemented` naming `x-amz-checksum-crc32`; GCS and
/// Ceph: 400 `InvalidArgument` or `InvalidRequest` naming the header). `BadDigest` is not
/// one: it says the bytes did not match, and the upload must fail.
fn refuses_checksums(code: Option<&str>, message: &str, status: Option<u16>) -> bool {
    let message = message.to_ascii_lowercase();
    let names_checksum = ["checksum", "x-amz-sdk-checksum", "x-amz-trailer", "aws-chunked", "trailer"]
        .iter()
        .any(|needle| message.contains(needle));
    match code {
        Some("BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch") => false,
        Some(code) if code.contains("Checksum") => true,
        Some("NotImplemented") => true,
        Some("InvalidArgument" | "InvalidRequest" | "BadRequest") => names_checksum,
        _ => matches!(status, Some(400 | 501)) && (names_checksum || status == Some(501)),
    }
}

/// Check that the file still holds the bytes that were scanned (by their BLAKE3).
async fn still_scanned(upload: &Upload<'_>) -> Result<(), StoreError> {
    read_again(upload, false).await.map(|_| ())
}

/// Read the file again: `Ok` when it still holds the bytes scanned, with their SHA-256 when
/// `sha256` asks for it.
async fn read_again(upload: &Upload<'_>, sha256: bool) -> Result<Option<Digest>, StoreError> {
    let path = upload.path.to_path_buf();
    let source = upload.source.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        if sha256 {
            crate::scan::hash_file_for_upload(&path).map(|(size, blake3, sha256)| (size, blake3, Some(sha256)))
        } else {
            crate::scan::hash_file(&path).map(|(size, blake3)| (size, blake3, None))
        }
    });
    match read.await {
        Ok(Ok((size, blake3, sha256))) if size == upload.size && blake3 == upload.blake3 => Ok(sha256),
        Ok(Ok(_)) => Err(StoreError::ChangedDuringPublish { path: source }),
        Ok(Err(err)) => Err(StoreError::File { path: source, source: err }),
        Err(join) => Err(StoreError::File { path: source, source: std::io::Error::other(join.to_string()) }),
    }
}

/// Why one part failed.
enum PartError {
    Store(StoreError),
    Sdk(Box<SdkError<aws_sdk_s3::operation::upload_part::UploadPartError, aws_sdk_s3::config::http::HttpResponse>>),
}

/// Part size for a file: at least 8 MiB, and large enough to stay within 10,000 parts
/// (a 5 TB file needs ~500 MiB parts), rounded up to a whole MiB.
pub fn part_size(size: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    size.div_ceil(MAX_PARTS).div_ceil(MIB).saturating_mul(MIB).max(MIN_PART)
}

impl super::Store for S3Store {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn get(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        let Some(out) = self.open(key).await? else { return Ok(None) };
        let etag = out.e_tag().unwrap_or_default().to_string();
        // Read into one buffer of the right size: collecting the chunks and then joining
        // them held the object twice.
        let length = out.content_length().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
        let mut bytes = Vec::with_capacity(length);
        let mut body = out.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| self.body_error(key, &e))? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(Fetched { bytes, etag }))
    }

    async fn get_manifest(&self, key: &str) -> Result<Option<FetchedManifest>, StoreError> {
        let Some(out) = self.open(key).await? else { return Ok(None) };
        let etag = out.e_tag().unwrap_or_default().to_string();
        // Parsed on a blocking thread as the chunks arrive: the JSON is never held whole.
        let (chunks, receiver) = tokio::sync::mpsc::channel(16);
        let parser = tokio::task::spawn_blocking(move || {
            crate::state::Manifest::from_reader(ChunkReader { receiver, chunk: None, read: 0 })
        });
        let mut body = out.body;
        let downloaded = loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    if chunks.send(chunk).await.is_err() {
                        break Ok(()); // the parser stopped early: it has its answer
                    }
                }
                Ok(None) => break Ok(()),
                Err(err) => break Err(err),
            }
        };
        drop(chunks);
        let manifest = parser.await;
        match (downloaded, manifest) {
            (Err(err), _) => Err(self.body_error(key, &err)),
            (Ok(()), Ok(manifest)) => Ok(Some(FetchedManifest { manifest, etag })),
            (Ok(()), Err(join)) => Err(self.internal(key, join.to_string())),
        }
    }

    async fn list(&self) -> Result<BTreeMap<String, RemoteObject>, StoreError> {
        // Pages arrive in key order: gathered in a Vec, the map is built with full nodes
        // (inserting one by one in order leaves every node half empty: ~2x at 100k keys).
        Ok(self.list_range(None, None, None).await?.into_iter().collect())
    }

    async fn put_file(&self, upload: Upload<'_>) -> Result<String, StoreError> {
        // The file must still be what was scanned: single PUTs read it again (BLAKE3, and the
        // SHA-256 that S3 checks) before sending it, multipart uploads after.
        match tokio::fs::metadata(upload.path).await {
            Ok(meta) if meta.len() == upload.size => {}
            Ok(_) => return Err(StoreError::ChangedDuringPublish { path: upload.source.to_path_buf() }),
            Err(source) => return Err(StoreError::File { path: upload.source.to_path_buf(), source }),
        }
        let checksums = self.sends_checksums();
        let put = if upload.size >= self.multipart_threshold {
            self.put_multipart(&upload, checksums).await
        } else {
            self.put_single(&upload, checksums).await
        };
        match put {
            // An S3-compatible store that does not take checksum headers: once more without.
            Err(StoreError::ChecksumRefused { message, .. }) => {
                self.checksums_refused(upload.key, &message);
                if upload.size >= self.multipart_threshold {
                    self.put_multipart(&upload, false).await
                } else {
                    self.put_single(&upload, false).await
                }
            }
            put => put,
        }
    }

    async fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        condition: Condition,
    ) -> Result<String, StoreError> {
        self.put_body(key, ByteStream::from(bytes), content_type, condition).await
    }

    async fn put_bytes_from(
        &self,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
        condition: Condition,
    ) -> Result<String, StoreError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StoreError::File { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) })?;
        self.put_body(key, body, content_type, condition).await
    }

    async fn update_headers(&self, key: &str, headers: &Headers, if_match: Option<&str>) -> Result<String, StoreError> {
        self.copy_object(&self.full(key), key, headers, if_match).await
    }

    async fn copy(&self, source: &str, key: &str, headers: &Headers) -> Result<String, StoreError> {
        self.copy_object(source, key, headers, None).await
    }

    async fn delete(&self, keys: &[String]) -> Result<DeleteResults, StoreError> {
        self.delete_objects(keys).await
    }
}

impl S3Store {
    /// Delete `key` only if it still has `etag` (a lock someone took over stays theirs);
    /// a key already gone counts as deleted.
    pub async fn delete_if_match(&self, key: &str, etag: &str) -> Result<(), StoreError> {
        match self.client.delete_object().bucket(&self.bucket).key(self.full(key)).if_match(etag).send().await {
            Ok(_) => Ok(()),
            Err(e) => match self.error(&e, Some(key)) {
                StoreError::PreconditionFailed { .. } | StoreError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    /// CopyObject from the absolute key `source` to `key` (under the prefix), replacing the
    /// headers; only if the source still has `if_match` as its ETag when given.
    async fn copy_object(
        &self,
        source: &str,
        key: &str,
        headers: &Headers,
        if_match: Option<&str>,
    ) -> Result<String, StoreError> {
        let full = self.full(key);
        let out = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(&full)
            .copy_source(key::copy_source(&self.bucket, source))
            .set_copy_source_if_match(if_match.map(str::to_string))
            .metadata_directive(MetadataDirective::Replace)
            .content_type(headers.content_type.as_str())
            .set_cache_control(headers.cache_control.as_ref().map(String::from))
            .set_content_encoding(headers.content_encoding.as_ref().map(String::from))
            .send()
            .await
            .map_err(|e| self.error(&e, Some(key)))?;
        Ok(out.copy_object_result().and_then(|r| r.e_tag()).unwrap_or_default().to_string())
    }

    async fn delete_objects(&self, keys: &[String]) -> Result<DeleteResults, StoreError> {
        debug_assert!(keys.len() <= super::DELETE_BATCH);
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(self.full(k)).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Other {
                bucket: self.bucket.clone(),
                key: None,
                code: "invalid request".into(),
                message: e.to_string(),
            })?;
        let delete =
            Delete::builder().set_objects(Some(objects)).quiet(true).build().map_err(|e| StoreError::Other {
                bucket: self.bucket.clone(),
                key: None,
                code: "invalid request".into(),
                message: e.to_string(),
            })?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| self.error(&e, keys.first().map(String::as_str)))?;
        let mut failed: BTreeMap<String, StoreError> = BTreeMap::new();
        for error in out.errors() {
            let full = error.key().unwrap_or_default();
            let key = full.strip_prefix(self.prefix.as_str()).unwrap_or(full).to_string();
            let code = error.code().unwrap_or("error").to_string();
            let message = error.message().unwrap_or_default().to_string();
            let err = if code == "AccessDenied" {
                StoreError::AccessDenied { bucket: self.bucket.clone(), key: Some(full.to_string()), message }
            } else {
                StoreError::Other { bucket: self.bucket.clone(), key: Some(full.to_string()), code, message }
            };
            failed.insert(key, err);
        }
        Ok(keys.iter().map(|k| (k.clone(), failed.remove(k).map_or(Ok(()), Err))).collect())
    }
}

/// The chunks of a response body, as a [`std::io::Read`] for a blocking thread.
struct ChunkReader<B> {
    receiver: tokio::sync::mpsc::Receiver<B>,
    chunk: Option<B>,
    read: usize,
}

impl<B: AsRef<[u8]>> std::io::Read for ChunkReader<B> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(chunk) = &self.chunk {
                let rest = &chunk.as_ref()[self.read..];
                if !rest.is_empty() {
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    self.read += n;
                    return Ok(n);
                }
            }
            match self.receiver.blocking_recv() {
                Some(chunk) => (self.chunk, self.read) = (Some(chunk), 0),
                None => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_stay_within_limits() {
        const MIB: u64 = 1024 * 1024;
        const GIB: u64 = 1024 * MIB;
        assert_eq!(part_size(12 * MIB), 8 * MIB);
        assert_eq!(part_size(6 * GIB), 8 * MIB);
        for size in [5 * GIB + 1, 100 * GIB, 5 * 1024 * GIB, 48 * 1024 * GIB] {
            let part = part_size(size);
            assert!(size.div_ceil(part) <= MAX_PARTS, "{size}: {part}");
            assert!(part <= 5 * GIB, "{size}: {part}");
            assert_eq!(part % MIB, 0);
        }
    }

    #[test]
    fn checksum_refusals_are_told_from_bad_bytes() {
        let refused = [
            (Some("NotImplemented"), "Header 'x-amz-checksum-crc32' with value 'AAAA' not implemented", Some(501)),
            (Some("InvalidArgument"), "x-amz-checksum-sha256 is not supported", Some(400)),
            (Some("XAmzContentChecksumMismatch"), "The provided checksum does not match", Some(400)),
            (None, "", Some(501)),
            (None, "unsupported header x-amz-trailer", Some(400)),
        ];
        for (code, message, status) in refused {
            assert!(refuses_checksums(code, message, status), "{code:?} {message}");
        }
        let other = [
            (Some("BadDigest"), "The SHA256 you specified did not match the calculated checksum.", Some(400)),
            (Some("InvalidArgument"), "Invalid storage class", Some(400)),
            (Some("AccessDenied"), "Access Denied", Some(403)),
            (Some("SlowDown"), "Please reduce your request rate", Some(503)),
            (None, "", Some(400)),
        ];
        for (code, message, status) in other {
            assert!(!refuses_checksums(code, message, status), "{code:?} {message}");
        }
    }
}
