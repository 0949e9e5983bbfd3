//! An in-memory store for tests of the executor and the publish flow: no network, keys that
//! can be told to fail, and a log of the writes in the order they happened.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

use super::{Condition, DeleteResults, Fetched, StoreError, Upload};
use crate::object::Headers;
use crate::object::RemoteObject;
use crate::scan::hash_file;

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryObject {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The headers.
    pub headers: Headers,
    /// A stand-in ETag (the SHA-256 in hex, quoted).
    pub etag: String,
}

/// A bucket in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, MemoryObject>>,
    failing: Mutex<BTreeSet<String>>,
    writes: Mutex<Vec<String>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make every write to `key` fail.
    pub fn fail(&self, key: &str) {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_string());
    }

    /// Let writes to `key` succeed again.
    pub fn heal(&self, key: &str) {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// The objects now.
    pub fn objects(&self) -> BTreeMap<String, MemoryObject> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Writes so far, as `op key`, in the order they happened.
    pub fn writes(&self) -> Vec<String> {
        self.writes.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn write(&self, op: &str, key: &str) -> Result<(), StoreError> {
        self.writes.lock().unwrap_or_else(PoisonError::into_inner).push(format!("{op} {key}"));
        if self.failing.lock().unwrap_or_else(PoisonError::into_inner).contains(key) {
            return Err(StoreError::Other {
                bucket: "memory".into(),
                key: Some(key.into()),
                code: "InternalError".into(),
                message: "injected".into(),
            });
        }
        Ok(())
    }

    fn store(&self, key: &str, bytes: Vec<u8>, headers: Headers) -> String {
        let etag =
            format!("\"{}\"", crate::object::Digest(<sha2::Sha256 as sha2::Digest>::digest(&bytes).into()).to_hex());
        let object = MemoryObject { bytes, headers, etag: etag.clone() };
        self.objects.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_string(), object);
        etag
    }
}

impl super::Store for MemoryStore {
    fn location(&self) -> String {
        "memory://".to_string()
    }

    async fn get(&self, key: &str) -> Result<Option<Fetched>, StoreError> {
        let objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(objects.get(key).map(|o| Fetched { bytes: o.bytes.clone(), etag: o.etag.clone() }))
    }

    async fn list(&self) -> Result<BTreeMap<String, RemoteObject>, StoreError> {
        let objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(objects
            .iter()
            .map(|(k, o)| (k.clone(), RemoteObject { etag: o.etag.clone(), size: o.bytes.len() as u64 }))
            .collect())
    }

    async fn put_file(&self, upload: Upload<'_>) -> Result<String, StoreError> {
        self.write("upload", upload.key)?;
        let file_err = |source| StoreError::File { path: upload.source.to_path_buf(), source };
        let (_, digest) = hash_file(upload.path).map_err(file_err)?;
        if digest != upload.blake3 {
            return Err(StoreError::ChangedDuringPublish { path: upload.source.to_path_buf() });
        }
        let bytes = std::fs::read(upload.path).map_err(file_err)?;
        Ok(self.store(upload.key, bytes, upload.headers.clone()))
    }

    async fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        condition: Condition,
    ) -> Result<String, StoreError> {
        self.write("put", key)?;
        let current = self.objects.lock().unwrap_or_else(PoisonError::into_inner).get(key).map(|o| o.etag.clone());
        let holds = match &condition {
            Condition::Always => true,
            Condition::IfMatch(etag) => current.as_deref() == Some(etag.as_str()),
            Condition::IfAbsent => current.is_none(),
        };
        if !holds {
            return Err(StoreError::PreconditionFailed { bucket: "memory".into(), key: key.into() });
        }
        Ok(self.store(
            key,
            bytes,
            Headers { content_type: content_type.into(), cache_control: None, content_encoding: None },
        ))
    }

    async fn update_headers(&self, key: &str, headers: &Headers, if_match: Option<&str>) -> Result<String, StoreError> {
        self.write("update-metadata", key)?;
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        if if_match.is_some_and(|etag| objects.get(key).is_none_or(|o| o.etag != etag)) {
            return Err(StoreError::PreconditionFailed { bucket: "memory".into(), key: key.into() });
        }
        let object =
            objects.get_mut(key).ok_or_else(|| StoreError::NotFound { bucket: "memory".into(), key: key.into() })?;
        object.headers = headers.clone();
        Ok(object.etag.clone())
    }

    async fn copy(&self, source: &str, key: &str, headers: &Headers) -> Result<String, StoreError> {
        self.write("copy", key)?;
        let bytes = self.objects.lock().unwrap_or_else(PoisonError::into_inner).get(source).map(|o| o.bytes.clone());
        let bytes = bytes.ok_or_else(|| StoreError::NotFound { bucket: "memory".into(), key: source.into() })?;
        Ok(self.store(key, bytes, headers.clone()))
    }

    async fn delete(&self, keys: &[String]) -> Result<DeleteResults, StoreError> {
        Ok(keys
            .iter()
            .map(|key| {
                let result = self.write("delete", key).map(|()| {
                    self.objects.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
                });
                (key.clone(), result)
            })
            .collect())
    }
}
