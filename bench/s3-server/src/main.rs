//! The benchmark's S3 server. The protocol (routing, SigV4, XML, aws-chunked bodies) is the
//! `s3s` crate's; the storage is this file: buckets of objects in memory, keys in a BTreeMap,
//! so a LIST page costs O(page), not a walk of every key. It implements what the benchmarked
//! tools call: buckets, PUT/GET/HEAD/DELETE, DeleteObjects, CopyObject (with REPLACE),
//! multipart uploads, ListObjects v1 and v2 (with `encoding-type=url`), and S3's conditional
//! writes (If-Match / If-None-Match).
//!
//! Usage: `skiff-bench-s3 --port PORT --access-key KEY --secret-key SECRET [--latency-ms N]`
//!
//! `--latency-ms N` holds every request N ms before answering it: a model of the round trip
//! to S3 from a laptop or a CI runner (20–150 ms), where the sequential parts of a publish
//! dominate. It does not model connection setup (TCP and TLS handshakes) nor bandwidth.
//!
//! `GET /__bench/counts` answers the requests served so far by operation (JSON: `GET`,
//! `HEAD`, `PUT`, `COPY` for a PUT with `x-amz-copy-source`, `LIST` for a GET of a bucket,
//! `POST`, `DELETE`), unsigned and without the latency: the benchmark's request counts
//! without a proxy in the way.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::crypto::{Checksum, Md5};
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

#[derive(Clone, Default)]
struct Attrs {
    content_type: Option<ContentType>,
    content_encoding: Option<ContentEncoding>,
    content_disposition: Option<ContentDisposition>,
    content_language: Option<ContentLanguage>,
    cache_control: Option<CacheControl>,
    website_redirect_location: Option<WebsiteRedirectLocation>,
    metadata: Option<Metadata>,
}

/// The stored headers of a request (PutObject, CopyObject, CreateMultipartUpload: the
/// fields have the same names).
macro_rules! attrs_of {
    ($input:expr) => {
        Attrs {
            content_type: $input.content_type,
            content_encoding: $input.content_encoding,
            content_disposition: $input.content_disposition,
            content_language: $input.content_language,
            cache_control: $input.cache_control,
            website_redirect_location: $input.website_redirect_location,
            metadata: $input.metadata,
        }
    };
}

/// A GetObject or HeadObject answer for `obj` (the fields have the same names).
macro_rules! object_answer {
    ($output:ident, $obj:expr, $len:expr, { $($field:ident: $value:expr),* $(,)? }) => {{
        let obj = $obj;
        let a = &obj.attrs;
        $output {
            content_length: Some($len as i64),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(ETag::Strong(obj.etag.clone())),
            last_modified: Some(Timestamp::from(obj.modified)),
            content_type: a.content_type.clone(),
            content_encoding: a.content_encoding.clone(),
            content_disposition: a.content_disposition.clone(),
            content_language: a.content_language.clone(),
            cache_control: a.cache_control.clone(),
            website_redirect_location: a.website_redirect_location.clone(),
            metadata: a.metadata.clone(),
            $($field: $value,)*
            ..Default::default()
        }
    }};
}

struct Obj {
    data: Bytes,
    /// Unquoted, as S3 computes it: the body's MD5, or for multipart the MD5 of the parts'
    /// MD5s and `-<parts>`.
    etag: String,
    modified: SystemTime,
    attrs: Attrs,
}

struct Bucket {
    created: SystemTime,
    objects: BTreeMap<String, Arc<Obj>>,
}

struct Upload {
    bucket: String,
    key: String,
    attrs: Attrs,
    parts: BTreeMap<i32, (Bytes, [u8; 16])>,
}

#[derive(Default)]
struct Store {
    buckets: RwLock<HashMap<String, Bucket>>,
    uploads: Mutex<HashMap<String, Upload>>,
    next_upload: AtomicU64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// S3's `encoding-type=url`: everything but unreserved characters and `/` percent-encoded.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn collect(body: Option<StreamingBlob>) -> S3Result<Bytes> {
    let Some(mut body) = body else { return Ok(Bytes::new()) };
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| S3Error::with_message(S3ErrorCode::IncompleteBody, e.to_string()))?;
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn check_md5(data: &[u8], content_md5: Option<&str>) -> S3Result<[u8; 16]> {
    let md5 = Md5::checksum(data);
    if let Some(expected) = content_md5 {
        let expected = base64_decode(expected).ok_or_else(|| s3_error!(InvalidDigest))?;
        if expected != md5 {
            return Err(s3_error!(BadDigest));
        }
    }
    Ok(md5)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    Some(out)
}

/// S3's conditional write checks against what the key holds now.
fn check_conditions(
    current: Option<&Obj>,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<()> {
    if let Some(condition) = if_none_match
        && current.is_some()
        && condition.is_any()
    {
        return Err(s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"));
    }
    if let Some(condition) = if_match {
        let Some(current) = current else { return Err(s3_error!(NoSuchKey)) };
        if let Some(etag) = condition.as_etag()
            && etag.value() != current.etag
        {
            return Err(s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"));
        }
    }
    Ok(())
}

struct Page {
    objects: Vec<Object>,
    prefixes: Vec<String>,
    truncated: bool,
    last: Option<String>,
}

impl Store {
    fn insert(
        &self,
        bucket: &str,
        key: String,
        obj: Obj,
        if_match: Option<&ETagCondition>,
        if_none_match: Option<&ETagCondition>,
    ) -> S3Result<()> {
        let mut buckets = self.buckets.write().unwrap();
        let b = buckets.get_mut(bucket).ok_or_else(|| s3_error!(NoSuchBucket))?;
        check_conditions(b.objects.get(&key).map(|o| &**o), if_match, if_none_match)?;
        b.objects.insert(key, Arc::new(obj));
        Ok(())
    }

    fn get(&self, bucket: &str, key: &str) -> S3Result<Arc<Obj>> {
        let buckets = self.buckets.read().unwrap();
        let b = buckets.get(bucket).ok_or_else(|| s3_error!(NoSuchBucket))?;
        b.objects.get(key).cloned().ok_or_else(|| s3_error!(NoSuchKey))
    }

    /// One page of keys after `after` under `prefix`, folded at `delimiter`.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max: usize,
    ) -> S3Result<Page> {
        let buckets = self.buckets.read().unwrap();
        let b = buckets.get(bucket).ok_or_else(|| s3_error!(NoSuchBucket))?;
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut page = Page { objects: Vec::new(), prefixes: Vec::new(), truncated: false, last: None };
        let delimiter = delimiter.filter(|d| !d.is_empty());
        for (key, obj) in b.objects.range::<str, _>((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            let folded =
                delimiter.and_then(|d| key[prefix.len()..].find(d).map(|i| &key[..prefix.len() + i + d.len()]));
            if let Some(common) = folded
                && (page.prefixes.last().map(String::as_str) == Some(common) || after.is_some_and(|a| a == common))
            {
                continue;
            }
            if page.objects.len() + page.prefixes.len() == max {
                page.truncated = true;
                break;
            }
            match folded {
                Some(common) => {
                    page.prefixes.push(common.to_string());
                    page.last = Some(common.to_string());
                }
                None => {
                    page.objects.push(Object {
                        key: Some(key.clone()),
                        size: Some(obj.data.len() as i64),
                        e_tag: Some(ETag::Strong(obj.etag.clone())),
                        last_modified: Some(Timestamp::from(obj.modified)),
                        storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
                        ..Default::default()
                    });
                    page.last = Some(key.clone());
                }
            }
        }
        Ok(page)
    }
}

fn encoded(encode: bool, s: Option<String>) -> Option<String> {
    if encode { s.map(|s| url_encode(&s)) } else { s }
}

fn page_output(page: Page, encode: bool) -> (Option<Vec<Object>>, Option<Vec<CommonPrefix>>, usize) {
    let count = page.objects.len() + page.prefixes.len();
    let objects = page
        .objects
        .into_iter()
        .map(|mut o| {
            o.key = encoded(encode, o.key);
            o
        })
        .collect::<Vec<_>>();
    let prefixes =
        page.prefixes.into_iter().map(|p| CommonPrefix { prefix: encoded(encode, Some(p)) }).collect::<Vec<_>>();
    ((!objects.is_empty()).then_some(objects), (!prefixes.is_empty()).then_some(prefixes), count)
}

fn is_url(encoding: &Option<EncodingType>) -> bool {
    encoding.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL)
}

fn max_keys(max: Option<i32>) -> usize {
    max.map_or(1000, |m| m.clamp(0, 1000) as usize)
}

#[async_trait::async_trait]
impl S3 for Store {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let mut buckets = self.buckets.write().unwrap();
        if buckets.contains_key(&req.input.bucket) {
            return Err(s3_error!(BucketAlreadyOwnedByYou));
        }
        buckets.insert(req.input.bucket, Bucket { created: SystemTime::now(), objects: BTreeMap::new() });
        Ok(S3Response::new(CreateBucketOutput::default()))
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        let mut buckets = self.buckets.write().unwrap();
        let b = buckets.get(&req.input.bucket).ok_or_else(|| s3_error!(NoSuchBucket))?;
        if !b.objects.is_empty() {
            return Err(s3_error!(BucketNotEmpty));
        }
        buckets.remove(&req.input.bucket);
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        if !self.buckets.read().unwrap().contains_key(&req.input.bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        if !self.buckets.read().unwrap().contains_key(&req.input.bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn list_buckets(&self, _req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self.buckets.read().unwrap();
        let mut list: Vec<Bucket_> = buckets
            .iter()
            .map(|(name, b)| Bucket_ {
                name: Some(name.clone()),
                creation_date: Some(Timestamp::from(b.created)),
                bucket_region: None,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(S3Response::new(ListBucketsOutput { buckets: Some(list), ..Default::default() }))
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        let data = collect(input.body).await?;
        let md5 = check_md5(&data, input.content_md5.as_deref())?;
        let etag = hex(&md5);
        let attrs = attrs_of!(input);
        let obj = Obj { data, etag: etag.clone(), modified: SystemTime::now(), attrs };
        self.insert(&input.bucket, input.key, obj, input.if_match.as_ref(), input.if_none_match.as_ref())?;
        Ok(S3Response::new(PutObjectOutput { e_tag: Some(ETag::Strong(etag)), ..Default::default() }))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let obj = self.get(&input.bucket, &input.key)?;
        if let Some(condition) = &input.if_match
            && condition.as_etag().is_some_and(|e| e.value() != obj.etag)
        {
            return Err(s3_error!(PreconditionFailed));
        }
        if let Some(condition) = &input.if_none_match
            && (condition.is_any() || condition.as_etag().is_some_and(|e| e.value() == obj.etag))
        {
            return Err(s3_error!(NotModified));
        }
        let len = obj.data.len() as u64;
        let (body, content_range) = match &input.range {
            None => (obj.data.clone(), None),
            Some(range) => {
                let r = range.check(len)?;
                (
                    obj.data.slice(r.start as usize..r.end as usize),
                    Some(format!("bytes {}-{}/{len}", r.start, r.end - 1)),
                )
            }
        };
        let len = body.len();
        let output = object_answer!(GetObjectOutput, &obj, len, {
            body: Some(StreamingBlob::from(s3s::Body::from(body))),
            content_range: content_range,
        });
        Ok(S3Response::new(output))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let obj = self.get(&input.bucket, &input.key)?;
        if let Some(condition) = &input.if_match
            && condition.as_etag().is_some_and(|e| e.value() != obj.etag)
        {
            return Err(s3_error!(PreconditionFailed));
        }
        let output = object_answer!(HeadObjectOutput, &obj, obj.data.len(), {});
        Ok(S3Response::new(output))
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let mut buckets = self.buckets.write().unwrap();
        let b = buckets.get_mut(&input.bucket).ok_or_else(|| s3_error!(NoSuchBucket))?;
        if let Some(condition) = &input.if_match {
            let Some(current) = b.objects.get(&input.key) else { return Err(s3_error!(NoSuchKey)) };
            if condition.as_etag().is_some_and(|e| e.value() != current.etag) {
                return Err(s3_error!(PreconditionFailed));
            }
        }
        b.objects.remove(&input.key);
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let mut buckets = self.buckets.write().unwrap();
        let b = buckets.get_mut(&input.bucket).ok_or_else(|| s3_error!(NoSuchBucket))?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in input.delete.objects {
            if let Some(etag) = &object.e_tag
                && b.objects.get(&object.key).is_some_and(|o| etag.value() != o.etag)
            {
                errors.push(Error {
                    key: Some(object.key),
                    code: Some("PreconditionFailed".into()),
                    message: Some("At least one of the pre-conditions you specified did not hold".into()),
                    ..Default::default()
                });
                continue;
            }
            b.objects.remove(&object.key);
            if !quiet {
                deleted.push(DeletedObject { key: Some(object.key), ..Default::default() });
            }
        }
        let output = DeleteObjectsOutput {
            deleted: (!deleted.is_empty()).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let CopySource::Bucket { bucket: src_bucket, key: src_key, .. } = &input.copy_source else {
            return Err(s3_error!(NotImplemented));
        };
        let src = self.get(src_bucket, src_key)?;
        if let Some(condition) = &input.copy_source_if_match
            && condition.as_etag().is_some_and(|e| e.value() != src.etag)
        {
            return Err(s3_error!(PreconditionFailed));
        }
        let replace = input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let attrs = if replace { attrs_of!(input) } else { src.attrs.clone() };
        let modified = SystemTime::now();
        let obj = Obj { data: src.data.clone(), etag: src.etag.clone(), modified, attrs };
        let etag = obj.etag.clone();
        self.insert(&input.bucket, input.key, obj, None, None)?;
        let result = CopyObjectResult {
            e_tag: Some(ETag::Strong(etag)),
            last_modified: Some(Timestamp::from(modified)),
            ..Default::default()
        };
        Ok(S3Response::new(CopyObjectOutput { copy_object_result: Some(result), ..Default::default() }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        if !self.buckets.read().unwrap().contains_key(&input.bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        let id = format!("upload-{}", self.next_upload.fetch_add(1, Ordering::Relaxed));
        let attrs = attrs_of!(input);
        let upload = Upload { bucket: input.bucket.clone(), key: input.key.clone(), attrs, parts: BTreeMap::new() };
        self.uploads.lock().unwrap().insert(id.clone(), upload);
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(id),
            ..Default::default()
        }))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        if !(1..=10_000).contains(&input.part_number) {
            return Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"));
        }
        let data = collect(input.body).await?;
        let md5 = check_md5(&data, input.content_md5.as_deref())?;
        let mut uploads = self.uploads.lock().unwrap();
        let upload = uploads.get_mut(&input.upload_id).ok_or_else(|| s3_error!(NoSuchUpload))?;
        upload.parts.insert(input.part_number, (data, md5));
        Ok(S3Response::new(UploadPartOutput { e_tag: Some(ETag::Strong(hex(&md5))), ..Default::default() }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let listed = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        if listed.is_empty() {
            return Err(s3_error!(InvalidPart, "You must specify at least one part"));
        }
        let upload = self.uploads.lock().unwrap().remove(&input.upload_id).ok_or_else(|| s3_error!(NoSuchUpload))?;
        if upload.bucket != input.bucket || upload.key != input.key {
            return Err(s3_error!(NoSuchUpload));
        }
        let mut data = BytesMut::new();
        let mut md5s = Vec::new();
        let mut previous = 0;
        for part in &listed {
            let number = part.part_number.ok_or_else(|| s3_error!(InvalidPart))?;
            if number <= previous {
                return Err(s3_error!(InvalidPartOrder));
            }
            previous = number;
            let (bytes, md5) = upload.parts.get(&number).ok_or_else(|| s3_error!(InvalidPart))?;
            if part.e_tag.as_ref().is_some_and(|e| e.value() != hex(md5)) {
                return Err(s3_error!(InvalidPart));
            }
            data.extend_from_slice(bytes);
            md5s.extend_from_slice(md5);
        }
        let etag = format!("{}-{}", hex(&Md5::checksum(&md5s)), listed.len());
        let obj = Obj { data: data.freeze(), etag: etag.clone(), modified: SystemTime::now(), attrs: upload.attrs };
        self.insert(&input.bucket, input.key.clone(), obj, input.if_match.as_ref(), input.if_none_match.as_ref())?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(ETag::Strong(etag)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.uploads.lock().unwrap().remove(&req.input.upload_id).ok_or_else(|| s3_error!(NoSuchUpload))?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let after = match &input.continuation_token {
            Some(token) => Some(
                unhex(token)
                    .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))?,
            ),
            None => input.start_after.clone(),
        };
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let page = self.list(&input.bucket, &prefix, input.delimiter.as_deref(), after.as_deref(), max)?;
        let encode = is_url(&input.encoding_type);
        let next = page.truncated.then(|| hex(page.last.as_deref().unwrap_or_default().as_bytes()));
        let truncated = page.truncated;
        let (contents, common_prefixes, count) = page_output(page, encode);
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: encoded(encode, input.prefix),
            delimiter: encoded(encode, input.delimiter),
            start_after: encoded(encode, input.start_after),
            encoding_type: input.encoding_type,
            max_keys: Some(max as i32),
            key_count: Some(count as i32),
            is_truncated: Some(truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            contents,
            common_prefixes,
            ..Default::default()
        }))
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let page = self.list(&input.bucket, &prefix, input.delimiter.as_deref(), input.marker.as_deref(), max)?;
        let encode = is_url(&input.encoding_type);
        let next = if page.truncated { page.last.clone() } else { None };
        let truncated = page.truncated;
        let (contents, common_prefixes, _) = page_output(page, encode);
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: encoded(encode, input.prefix),
            delimiter: encoded(encode, input.delimiter),
            marker: encoded(encode, input.marker),
            next_marker: encoded(encode, next),
            encoding_type: input.encoding_type,
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            contents,
            common_prefixes,
            ..Default::default()
        }))
    }
}

type Bucket_ = s3s::dto::Bucket;

/// Requests served, by operation (see the module's doc).
static COUNTS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

fn operation<B>(request: &hyper::Request<B>) -> &'static str {
    let method = request.method();
    let path = request.uri().path().trim_start_matches('/');
    let bucket_only = !path.is_empty() && !path.trim_end_matches('/').contains('/');
    if method == hyper::Method::PUT && request.headers().contains_key("x-amz-copy-source") {
        "COPY"
    } else if method == hyper::Method::GET && bucket_only {
        "LIST"
    } else {
        match *method {
            hyper::Method::GET => "GET",
            hyper::Method::HEAD => "HEAD",
            hyper::Method::PUT => "PUT",
            hyper::Method::POST => "POST",
            hyper::Method::DELETE => "DELETE",
            _ => "OTHER",
        }
    }
}

fn arg(args: &[String], name: &str) -> String {
    let i = args.iter().position(|a| a == name).unwrap_or_else(|| panic!("missing {name}"));
    args.get(i + 1).unwrap_or_else(|| panic!("{name} needs a value")).clone()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = arg(&args, "--port").parse().expect("--port is a number");
    let mut builder = S3ServiceBuilder::new(Store::default());
    builder.set_auth(SimpleAuth::from_single(arg(&args, "--access-key"), arg(&args, "--secret-key")));
    let service = builder.build();
    let latency = args
        .iter()
        .position(|a| a == "--latency-ms")
        .map(|_| {
            std::time::Duration::from_millis(arg(&args, "--latency-ms").parse().expect("--latency-ms is a number"))
        })
        .unwrap_or_default();
    let service = hyper::service::service_fn(move |request| {
        let service = service.clone();
        async move {
            if request.uri().path() == "/__bench/counts" {
                let counts = COUNTS.lock().unwrap().clone();
                let body = format!(
                    "{{{}}}",
                    counts.iter().map(|(op, n)| format!("\"{op}\": {n}")).collect::<Vec<_>>().join(", ")
                );
                return Ok(hyper::Response::new(s3s::Body::from(body)));
            }
            *COUNTS.lock().unwrap().entry(operation(&request)).or_default() += 1;
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            hyper::service::Service::call(&service, request).await
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("listening on http://{} (latency {} ms)", listener.local_addr()?, latency.as_millis());
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        socket.set_nodelay(true)?;
        let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
