//! What a run stopped half way (killed, or failed past its retries) must leave behind, as
//! checks the kill, fault and chaos tests share.

use std::collections::BTreeMap;
use std::path::Path;

use super::Bucket;

/// A page that links the `assets` (absolute paths).
pub fn page(title: &str, assets: &[&str]) -> Vec<u8> {
    let links = assets.iter().fold(String::new(), |mut text, a| {
        text.push_str(&format!("<link href=\"{a}\">"));
        text
    });
    format!("<html><head>{links}</head><body>{title}</body></html>").into_bytes()
}

/// Lowercase hex SHA-256, as manifests of format 1 wrote it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// Lowercase hex BLAKE3, as manifests write it.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The assets a page links (`href="/…"`, `src="/…"`), as keys.
pub fn linked(html: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(html);
    let mut out = Vec::new();
    for attribute in ["href=\"/", "src=\"/"] {
        for part in text.split(attribute).skip(1) {
            out.push(part.split('"').next().unwrap_or_default().to_string());
        }
    }
    out
}

/// Every file under `root` by its key (`/`-separated), with its bytes.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    super::walk(root)
        .into_iter()
        .map(|path| {
            let key = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            let bytes = std::fs::read(&path).unwrap();
            (key, bytes)
        })
        .collect()
}

/// The site's objects in `bucket` (skiff's own `.skiff/` left out), with their bytes.
pub fn held(bucket: &Bucket) -> BTreeMap<String, Vec<u8>> {
    bucket.objects().into_iter().filter(|(k, _)| !k.starts_with(".skiff/")).map(|(k, o)| (k, o.bytes)).collect()
}

/// In place: wherever the manifest vouches for an object (the same ETag), it has the
/// object's hash; every page in the bucket has the assets it links.
#[track_caller]
pub fn in_place(bucket: &Bucket, context: &str) {
    let objects = bucket.objects();
    if let Some(manifest) = objects.get(".skiff/manifest.json") {
        let manifest: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
        for (key, entry) in manifest["files"].as_object().unwrap() {
            let Some(object) = objects.get(key) else { continue };
            if entry["etag"].as_str() == Some(object.etag.as_str()) {
                assert_eq!(entry["blake3"].as_str(), Some(blake3_hex(&object.bytes).as_str()), "{context}: `{key}`");
            }
        }
    }
    for (key, object) in objects.iter().filter(|(k, _)| k.to_ascii_lowercase().ends_with(".html")) {
        for asset in linked(&object.bytes) {
            assert!(objects.contains_key(&asset), "{context}: `{key}` links `{asset}`, which is gone");
        }
    }
}

/// Atomic: the deploy the router's KVS names for `target` is complete: every file of its
/// manifest is where the router looks for it (the deploy's prefix, or for a delta deploy's
/// key outside its delta index, its base's), byte for byte. Returns its id, `None` when the
/// KVS routes no such target.
#[track_caller]
pub fn complete(site: &crate::provision::Site, target: &str, context: &str) -> Option<String> {
    let arn = site.state()["resources"]["kvs_arn"].as_str().unwrap().to_string();
    let kvs = crate::provision::kvs_contents()[&arn].clone();
    let id = kvs[target].as_str()?.to_string();
    let objects = Bucket { name: site.bucket.clone(), client: super::client_for(&super::endpoint()) }.objects();
    let manifest = objects
        .get(&format!("_deploys/{target}/{id}.json"))
        .unwrap_or_else(|| panic!("{context}: the live deploy {id} of {target} has a manifest"));
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    for (key, entry) in manifest["files"].as_object().unwrap() {
        let at = location(&kvs, target, &id, key);
        let object = objects
            .get(&at)
            .unwrap_or_else(|| panic!("{context}: `{key}` of the live deploy of {target} is missing (at `{at}`)"));
        assert_eq!(entry["blake3"].as_str(), Some(blake3_hex(&object.bytes).as_str()), "{context}: `{key}`");
    }
    Some(id)
}

/// Where the router looks for `key` of deploy `id` of `target`, over the KVS `kvs`: the
/// deploy's prefix, or (a delta deploy's key outside its delta index) its base's.
pub fn location(kvs: &serde_json::Value, target: &str, id: &str, key: &str) -> String {
    let table: serde_json::Value =
        kvs[format!("routes:{id}")].as_str().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
    if let (Some(base), Some(buckets)) = (table["b"].as_str(), table["m"].as_u64()) {
        let hash = fnv1a(&format!("/{key}"));
        let bucket = kvs[format!("d:{id}:{}", u64::from(hash) % buckets)].as_str().unwrap_or_default();
        let held = bucket.as_bytes().chunks(9).any(|e| e.len() == 9 && e[1..] == *format!("{hash:08x}").as_bytes());
        if !held {
            return format!("_deploys/{base}/{key}");
        }
    }
    format!("_deploys/{target}/{id}/{key}")
}

/// 32-bit FNV-1a over UTF-16 code units (router/SPEC.md).
fn fnv1a(s: &str) -> u32 {
    s.encode_utf16().fold(2_166_136_261_u32, |h, unit| (h ^ u32::from(unit)).wrapping_mul(16_777_619))
}

/// Atomic: state.json records as live what the router's KVS serves for `target`.
#[track_caller]
pub fn agree(site: &crate::provision::Site, target: &str, context: &str) {
    let arn = site.state()["resources"]["kvs_arn"].as_str().unwrap().to_string();
    let routed = crate::provision::kvs_contents()[&arn][target].clone();
    assert_eq!(site.state()["targets"][target]["live"], routed, "{context}: state.json and the KVS agree");
}
