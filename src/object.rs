//! The vocabulary of stored objects: the [`Digest`] of the bytes stored, the
//! [`Headers`] they are served with (each distinct value shared, [`HeaderValue`]), and a
//! [`RemoteObject`] of a bucket listing. Imports nothing from the crate.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 256-bit digest. The bytes a file stores (after gzip when a rule asks for it) are named
/// by their BLAKE3 ([`Digest::blake3_of`]): the scan's hash, three times as fast as SHA-256.
/// SHA-256 ([`Digest::of`]) is the upload's checksum for S3, the hash of format-1
/// manifests, and the hash behind stable names (slugs, references).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The SHA-256 of some bytes.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(bytes).into())
    }

    /// The BLAKE3 of some bytes.
    pub fn blake3_of(bytes: &[u8]) -> Self {
        Self(blake3::hash(bytes).into())
    }

    /// Lowercase hex.
    pub fn to_hex(self) -> String {
        use fmt::Write as _;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Parse lowercase or uppercase hex.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(out))
    }

    /// Standard base64, as S3's `x-amz-checksum-sha256` wants it.
    pub fn to_base64(self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", &self.to_hex()[..12])
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a 256-bit digest in hex")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Digest, E> {
                Digest::from_hex(text).ok_or_else(|| E::custom(format!("`{text}` is not a 256-bit digest in hex")))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// The HTTP headers an object is stored with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headers {
    /// `Content-Type`.
    pub content_type: HeaderValue,
    /// `Cache-Control`, when a rule sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<HeaderValue>,
    /// `Content-Encoding` (`gzip` when a rule compresses the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<HeaderValue>,
}

/// A header value, one shared copy per distinct value: a site has a handful of content types
/// and cache policies, and each file's headers are held twice (the scan and the manifest), so
/// at 100k files a `String` each came to ~15 MB.
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderValue(std::sync::Arc<str>);

impl HeaderValue {
    /// The shared copy of `value`.
    pub fn new(value: &str) -> Self {
        use std::collections::BTreeSet;
        use std::sync::{Arc, Mutex, PoisonError};
        // Values are only ever added; a poisoned lock still holds a valid set.
        static VALUES: Mutex<BTreeSet<Arc<str>>> = Mutex::new(BTreeSet::new());
        let mut values = VALUES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = values.get(value) {
            return Self(Arc::clone(shared));
        }
        let shared: Arc<str> = Arc::from(value);
        values.insert(Arc::clone(&shared));
        Self(shared)
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both are the same copy.
    pub fn is_shared_with(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for HeaderValue {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for HeaderValue {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for HeaderValue {
    fn from(value: String) -> Self {
        Self::new(&value)
    }
}

impl From<&HeaderValue> for String {
    fn from(value: &HeaderValue) -> Self {
        value.as_str().to_string()
    }
}

impl PartialEq<str> for HeaderValue {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for HeaderValue {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for HeaderValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HeaderValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = HeaderValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a header value")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<HeaderValue, E> {
                Ok(HeaderValue::new(value))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// An object in the bucket listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    /// The ETag, quoted as S3 lists it.
    pub etag: String,
    /// The size.
    pub size: u64,
}
