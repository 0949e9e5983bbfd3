//! `skiff iam-policy`: every AWS operation the commands send, as seen on the wire by the
//! recording proxy, must be in `skiff::iam::OPERATIONS` for the job that ran it; and the
//! printed policy grants its actions.

use std::collections::BTreeSet;

use skiff::iam::{self, Job};

use crate::harness::endpoint;
use crate::harness::proxy::{Proxy, Request};
use crate::provision::Site;

/// The API operation of a request, from its service, method, path, query and headers.
fn operation(request: &Request) -> (String, String) {
    let service = request.service.clone().unwrap_or_else(|| panic!("an unsigned request: {request:?}"));
    let (path, query) = request.target.split_once('?').unwrap_or((&request.target, ""));
    let has = |name: &str| query.split('&').any(|pair| pair.split('=').next() == Some(name));
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let method = request.method.as_str();
    let name = match service.as_str() {
        "acm" => {
            request.amz_target.as_deref().and_then(|t| t.rsplit('.').next()).unwrap_or("unknown ACM call").to_string()
        }
        "s3" => {
            let object = segments.len() > 1;
            let bucket_sub = ["policy", "tagging", "publicAccessBlock", "ownershipControls", "encryption", "lifecycle"]
                .into_iter()
                .find(|sub| has(sub));
            let bucket_op = |verb: &str, sub: &str| {
                let noun = match sub {
                    "policy" => "BucketPolicy",
                    "tagging" => "BucketTagging",
                    "publicAccessBlock" => "PublicAccessBlock",
                    "ownershipControls" => "BucketOwnershipControls",
                    "encryption" => "BucketEncryption",
                    _ => "BucketLifecycleConfiguration",
                };
                format!("{verb}{noun}")
            };
            match (method, object, bucket_sub) {
                ("GET", false, Some(sub)) => bucket_op("Get", sub),
                ("PUT", false, Some(sub)) => bucket_op("Put", sub),
                ("GET", false, None) if has("list-type") => "ListObjectsV2".into(),
                ("GET", false, None) if has("location") => "GetBucketLocation".into(),
                ("HEAD", false, _) => "HeadBucket".into(),
                ("PUT", false, None) => "CreateBucket".into(),
                ("POST", false, _) if has("delete") => "DeleteObjects".into(),
                ("GET", true, _) => "GetObject".into(),
                ("HEAD", true, _) => "HeadObject".into(),
                ("PUT", true, _) if has("partNumber") => "UploadPart".into(),
                ("PUT", true, _) if request.copy_source => "CopyObject".into(),
                ("PUT", true, _) => "PutObject".into(),
                ("POST", true, _) if has("uploads") => "CreateMultipartUpload".into(),
                ("POST", true, _) if has("uploadId") => "CompleteMultipartUpload".into(),
                ("DELETE", true, _) if has("uploadId") => "AbortMultipartUpload".into(),
                ("DELETE", true, _) => "DeleteObject".into(),
                _ => format!("unknown S3 call {method} {}", request.target),
            }
        }
        "cloudfront" => {
            let rest = segments.get(1..).unwrap_or_default();
            match (method, rest) {
                ("POST", ["distribution"]) if has("WithTags") => "CreateDistributionWithTags".into(),
                ("POST", ["distribution"]) => "CreateDistribution".into(),
                ("GET", ["distribution"]) => "ListDistributions".into(),
                ("GET", ["distribution", _]) => "GetDistribution".into(),
                ("GET", ["distribution", _, "config"]) => "GetDistributionConfig".into(),
                ("PUT", ["distribution", _, "config"]) => "UpdateDistribution".into(),
                ("POST", ["distribution", _, "invalidation"]) => "CreateInvalidation".into(),
                ("GET", ["distribution", _, "invalidation"]) => "ListInvalidations".into(),
                ("GET", ["distribution", _, "invalidation", _]) => "GetInvalidation".into(),
                ("GET", ["tagging"]) => "ListTagsForResource".into(),
                ("POST", ["tagging"]) if has("Operation") && query.contains("Operation=Tag") => "TagResource".into(),
                ("POST", ["origin-access-control"]) => "CreateOriginAccessControl".into(),
                ("GET", ["origin-access-control"]) => "ListOriginAccessControls".into(),
                ("GET", ["origin-access-control", _]) => "GetOriginAccessControl".into(),
                ("GET", ["origin-access-control", _, "config"]) => "GetOriginAccessControlConfig".into(),
                ("PUT", ["origin-access-control", _, "config"]) => "UpdateOriginAccessControl".into(),
                ("POST", ["function"]) => "CreateFunction".into(),
                ("GET", ["function"]) => "ListFunctions".into(),
                ("GET", ["function", _, "describe"]) => "DescribeFunction".into(),
                ("GET", ["function", _]) => "GetFunction".into(),
                ("PUT", ["function", _]) => "UpdateFunction".into(),
                ("POST", ["function", _, "publish"]) => "PublishFunction".into(),
                ("POST", ["key-value-store"]) => "CreateKeyValueStore".into(),
                ("GET", ["key-value-store"]) => "ListKeyValueStores".into(),
                ("GET", ["key-value-store", _]) => "DescribeKeyValueStore".into(),
                _ => format!("unknown CloudFront call {method} {}", request.target),
            }
        }
        "cloudfront-keyvaluestore" => {
            // `/key-value-stores/<arn>[/keys[/<key>]]`; the ARN may hold an encoded `/`.
            let keys = path.find("/keys").map(|at| &path[at..]);
            match (method, keys) {
                ("GET", None) => "DescribeKeyValueStore".into(),
                ("GET", Some("/keys")) => "ListKeys".into(),
                ("POST", Some("/keys")) => "UpdateKeys".into(),
                ("GET", Some(_)) => "GetKey".into(),
                ("PUT", Some(_)) => "PutKey".into(),
                ("DELETE", Some(_)) => "DeleteKey".into(),
                _ => format!("unknown KVS call {method} {}", request.target),
            }
        }
        "route53" => {
            let rest = segments.get(1..).unwrap_or_default();
            match (method, rest) {
                ("GET", ["hostedzonesbyname"]) => "ListHostedZonesByName".into(),
                ("GET", ["hostedzone"]) => "ListHostedZones".into(),
                ("GET", ["hostedzone", _]) => "GetHostedZone".into(),
                ("GET", ["hostedzone", _, "rrset"]) => "ListResourceRecordSets".into(),
                ("POST", ["hostedzone", _, "rrset"]) => "ChangeResourceRecordSets".into(),
                ("GET", ["change", _]) => "GetChange".into(),
                _ => format!("unknown Route 53 call {method} {}", request.target),
            }
        }
        other => format!("unknown service {other}"),
    };
    (service, name)
}

/// The operations a proxy saw, by service.
fn seen(proxy: &Proxy) -> BTreeSet<(String, String)> {
    proxy.requests().iter().map(operation).collect()
}

/// The operations of `seen` that `job`'s policy does not cover: missing from the table, or
/// in it for other jobs only, or whose actions the printed policy lacks.
fn uncovered(job: Job, seen: &BTreeSet<(String, String)>) -> Vec<String> {
    let policy = iam::policy(job, &skiff::config::IamSettings::default()).to_string();
    seen.iter()
        .filter_map(|(service, name)| match iam::operation(service, name) {
            None => Some(format!("{service} {name}: not in skiff::iam::OPERATIONS")),
            Some(op) if !iam::allows(job, op) => Some(format!("{service} {name}: not allowed for {job:?}")),
            Some(op) => op
                .actions
                .iter()
                .find(|action| !policy.contains(&format!("\"{action}\"")))
                .map(|action| format!("{service} {name}: `{action}` is not in the {job:?} policy")),
        })
        .collect()
}

#[test]
fn every_operation_on_the_wire_is_in_the_iam_table() {
    let site = Site::new("iam");
    let public = site.dir.path().join("public");
    std::fs::create_dir_all(public.join("assets")).unwrap();
    std::fs::write(public.join("index.html"), "<h1>one</h1>").unwrap();
    std::fs::write(public.join("404.html"), "<h1>gone</h1>").unwrap();
    std::fs::write(public.join("assets/a.css"), "a{}").unwrap();
    // A file large enough for a multipart upload (the threshold is set to 5 MiB below).
    std::fs::write(public.join("assets/big.bin"), vec![7u8; 6 * 1024 * 1024]).unwrap();
    site.configure("\n[deploy]\nmultipart_threshold_mib = 5\nkeep = 2\n");

    let mut failures = Vec::new();
    let mut check = |job: Job, proxy: &Proxy, what: &str| {
        for problem in uncovered(job, &seen(proxy)) {
            failures.push(format!("{what}: {problem}"));
        }
    };

    let proxy = Proxy::start(&endpoint());
    site.skiff_at(&proxy.endpoint, &["provision", "--yes"]).success();
    site.skiff_at(&proxy.endpoint, &["provision", "--yes"]).success();
    check(Job::Provision, &proxy, "provision");

    let proxy = Proxy::start(&endpoint());
    site.skiff_at(&proxy.endpoint, &["publish", "--yes"]).success();
    std::fs::write(public.join("index.html"), "<h1>two</h1>").unwrap();
    site.skiff_at(&proxy.endpoint, &["publish", "--yes"]).success();
    // A third deploy: the first goes (keep = 2).
    std::fs::remove_file(public.join("assets/a.css")).unwrap();
    site.skiff_at(&proxy.endpoint, &["publish", "--yes"]).success();
    site.skiff_at(&proxy.endpoint, &["publish", "--yes", "--preview", "feature/iam"]).success();
    site.skiff_at(&proxy.endpoint, &["rollback"]).success();
    site.skiff_at(&proxy.endpoint, &["deploys"]).success();
    site.skiff_at(&proxy.endpoint, &["previews", "list"]).success();
    site.skiff_at(&proxy.endpoint, &["previews", "delete", "feature/iam", "--yes"]).success();
    let distribution = site.distribution_id();
    site.skiff_at(&proxy.endpoint, &["invalidate", "/index.html", "--distribution-id", &distribution]).success();
    check(Job::Publish, &proxy, "publish");

    // In place, on a plain bucket with the site's distribution to invalidate.
    let plain = crate::harness::Bucket::new("iam-in-place");
    let proxy = Proxy::start(&endpoint());
    let dir = public.to_str().unwrap();
    // Its own skiff.toml: the site's has `[[redirects]]`, which need the router.
    let config = site.dir.path().join("in-place.toml");
    std::fs::write(&config, "[site]\n").unwrap();
    let config = config.to_str().unwrap();
    let args = ["publish", dir, "--bucket", &plain.name, "--distribution-id", &distribution, "-c", config];
    site.skiff_at(&proxy.endpoint, &args).success();
    std::fs::write(public.join("index.html"), "<h1>three</h1>").unwrap();
    site.skiff_at(&proxy.endpoint, &[&args[..], &["--wait"]].concat()).success();
    check(Job::Publish, &proxy, "publish in place");

    let proxy = Proxy::start(&endpoint());
    site.skiff_at(&proxy.endpoint, &["status"]).success();
    check(Job::Status, &proxy, "status");

    assert!(failures.is_empty(), "operations the IAM table does not cover:\n{}", failures.join("\n"));
}

#[test]
fn the_printed_policy_is_the_table_narrowed_to_the_site() {
    let run =
        crate::harness::skiff(&["iam-policy", "publish", "--bucket", "my-site", "--distribution-id", "E2QWRUHAPOMQZL"])
            .success();
    let printed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let resources =
        skiff::config::IamSettings { bucket: Some("my-site".into()), distribution_id: Some("E2QWRUHAPOMQZL".into()) };
    assert_eq!(printed, iam::policy(Job::Publish, &resources));
    assert!(run.stdout.contains("arn:aws:s3:::my-site/*"), "{}", run.stdout);
    crate::harness::skiff(&["iam-policy", "everything"]).failure(2, &["everything"]);
}
